/**
 * Pickles CPython loads in seconds that a naive reader cannot: objects repeated by reference
 * (DUP, BINGET), lists of millions of references, a memo of millions of entries. Laid out opcode
 * by opcode (protocol 4; pickletools documents each opcode), since CPython's pickler writes no
 * DUP. Not a test file itself.
 */

const PROTO_4 = [0x80, 0x04];
const EMPTY_DICT = 0x7d;
const EMPTY_LIST = 0x5d;
const MARK = 0x28;
const SETITEM = 0x73;
const SETITEMS = 0x75;
const APPEND = 0x61;
const APPENDS = 0x65;
const DUP = 0x32;
const NONE = 0x4e;
const BINPUT = 0x71;
const BINGET = 0x68;
const MEMOIZE = 0x94;
const LONG_BINGET = 0x6a;
const STOP = 0x2e;
/** Items per APPENDS batch: below the reader's stack limit, as CPython's 1000 is. */
const BATCH = 50_000;

export class PickleBytes {
  readonly #parts: Buffer[] = [Buffer.from(PROTO_4)];

  op(...bytes: number[]): this {
    this.#parts.push(Buffer.from(bytes));
    return this;
  }

  str(text: string): this {
    const utf8 = Buffer.from(text, 'utf8');
    return this.op(0x8c, utf8.length).raw(utf8);
  }

  int(value: number): this {
    const bytes = Buffer.alloc(5);
    bytes[0] = 0x4a; // BININT
    bytes.writeInt32LE(value, 1);
    return this.raw(bytes);
  }

  raw(bytes: Buffer): this {
    this.#parts.push(bytes);
    return this;
  }

  /** `count` copies of the object on top of the stack appended to the list below it, by DUP. */
  appendCopies(count: number, memoIndex: number): this {
    this.op(BINPUT, memoIndex);
    for (let done = 0; done < count; done += BATCH) {
      const batch = Math.min(BATCH, count - done);
      // The first batch starts with the object already on the stack (after the list's MARK).
      if (done > 0) this.op(MARK, BINGET, memoIndex);
      this.raw(Buffer.alloc(batch - 1, DUP)).op(APPENDS);
    }
    return this;
  }

  /** `count` Nones appended to the list on top of the stack. */
  appendNones(count: number): this {
    for (let done = 0; done < count; done += BATCH) {
      this.op(MARK, NONE).raw(Buffer.alloc(Math.min(BATCH, count - done) - 1, DUP)).op(APPENDS);
    }
    return this;
  }

  build(): Buffer {
    return Buffer.concat([...this.#parts, Buffer.from([STOP])]);
  }
}

/** A free block of `size` bytes: {'size': size, 'state': 'inactive'}. */
function freeBlock(p: PickleBytes, size: number): PickleBytes {
  return p.op(EMPTY_DICT).str('size').int(size).op(SETITEM).str('state').str('inactive').op(SETITEM);
}

/**
 * {'segments': [S] * segments} with S = {'device': 0, 'total_size': blocks * blockSize,
 * 'blocks': [B] * blocks}: one segment dict and one block dict, each list holding them by
 * reference. 1 million by 1 million is 2 MB.
 */
export function sharedReferences(segments: number, blocks: number, blockSize = 512): Buffer {
  const p = new PickleBytes().op(EMPTY_DICT).str('segments').op(EMPTY_LIST, MARK, EMPTY_DICT);
  p.str('device').int(0).op(SETITEM).str('total_size').int(blocks * blockSize).op(SETITEM);
  p.str('blocks').op(EMPTY_LIST, MARK);
  freeBlock(p, blockSize).appendCopies(blocks, 0).op(SETITEM);
  return p.appendCopies(segments, 1).op(SETITEM).build();
}

/** {'segments': [], 'x': [None] * items}: one list of `items` references to None, 1 byte each. */
export function longList(items: number): Buffer {
  return new PickleBytes().op(EMPTY_DICT).str('segments').op(EMPTY_LIST, SETITEM).str('x').op(EMPTY_LIST).appendNones(items).op(SETITEM).build();
}

/**
 * {'device_traces': [[E] * entries], 'segments': []} with E = {'action': 'alloc', 'size': size}:
 * one trace list of one entry by reference, laid out so that the reader streams it to the
 * analysis (device_traces the first key of the root's SETITEMS, the trace list inside a MARK).
 */
export function repeatedTraceEntry(entries: number, size: number): Buffer {
  const p = new PickleBytes().op(EMPTY_DICT, MARK).str('device_traces').op(EMPTY_LIST, MARK, EMPTY_LIST, MARK, EMPTY_DICT);
  p.str('action').str('alloc').op(SETITEM).str('size').int(size).op(SETITEM);
  return p.appendCopies(entries, 0).op(APPENDS).str('segments').op(EMPTY_LIST, SETITEMS).build();
}

/**
 * {'segments': [], 'device_traces': [[]] * lists}: `lists` empty trace lists, made one at a time
 * (APPEND each, so the reader offers each to the analysis) or in one batch (`batched`).
 */
export function manyTraceLists(lists: number, batched: boolean): Buffer {
  const p = new PickleBytes().op(EMPTY_DICT).str('segments').op(EMPTY_LIST, SETITEM).str('device_traces').op(EMPTY_LIST);
  if (batched) {
    for (let done = 0; done < lists; done += BATCH) p.op(MARK).raw(Buffer.alloc(Math.min(BATCH, lists - done), EMPTY_LIST)).op(APPENDS);
  } else {
    p.raw(Buffer.from(Array.from({ length: lists }, () => [EMPTY_LIST, APPEND]).flat()));
  }
  return p.op(SETITEM).build();
}

/** None stored under memo indices 0 to entries - 1 (MEMOIZE), then the last one fetched: the result is None. */
export function manyMemoEntries(entries: number): Buffer {
  const get = Buffer.alloc(5);
  get[0] = LONG_BINGET;
  get.writeUInt32LE(entries - 1, 1);
  // POP (0x30) the None left below the fetched one, so the pickle ends with one item.
  return new PickleBytes().op(NONE).raw(Buffer.alloc(entries, MEMOIZE)).raw(get).op(0x30).build();
}
