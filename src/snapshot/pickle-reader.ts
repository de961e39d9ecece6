/**
 * A restricted pickle reader: builds plain data (dicts as null-prototype objects, lists and
 * tuples and sets as arrays, str, int, float, bool, None, bytes) from protocols 2 to 5, and
 * refuses every opcode that would import or call anything (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
 * INST, OBJ, NEWOBJ, EXT*, persistent ids, out-of-band buffers), naming it and its offset.
 * Nothing in a pickle is ever executed.
 *
 * It is resumable: decode() takes whatever bytes have arrived and stops before an opcode that is
 * not complete yet, saying how many bytes it needs, so a file streams through a small buffer. It
 * is bounded: stack height, MARK depth, the items of any one list and the length of any one
 * string or bytes object have limits, and lengths are checked against the file's size before
 * anything is allocated. The memo keeps only entries a later GET refers to (found by
 * MemoGetScanner, a first pass), and a caller may take the items of chosen lists as they are
 * appended (onNewList), so a snapshot's blocks are analysed and dropped instead of held: memory
 * stays far below the file's size.
 */
import { PickleMemo } from './pickle-memo.js';
import { describeOpcode, OPCODES } from './pickle-opcodes.js';

export class PickleFormatError extends Error {
  /** What is wrong, without the offset; "{op}" stands for the opcode until the offset is known. */
  readonly detail: string;
  /** Byte offset in the pickle, or -1 until the reader adds it. */
  readonly offset: number;
  constructor(detail: string, offset: number) {
    super(offset >= 0 ? `${detail} at offset ${offset}` : detail);
    this.name = 'PickleFormatError';
    this.detail = detail;
    this.offset = offset;
  }
}

/** Thrown inside the opcode loop, which adds where (it alone knows the position). */
function fail(detail: string): never {
  throw new PickleFormatError(detail, -1);
}

export interface PickleLimits {
  /** Items on the stack at once (CPython's pickler batches containers by 1000). */
  maxStack: number;
  /** Open MARKs at once: how deep containers nest while they are built. */
  maxMarks: number;
  /** Bytes in one string or bytes object. */
  maxStringBytes: number;
  /** Items in one list or set the reader holds (not one a sink takes). */
  maxListItems: number;
}

/**
 * maxListItems: each item of a list costs at least one byte of the pickle (DUP in an APPENDS
 * batch), so a bound on the file is none on a list: 145 MB of DUPs make one list longer than V8
 * can hold, and it aborts the process. 2^24 is far more than any list a snapshot keeps whole (one
 * segment's blocks, one stack's frames; segments and trace entries stream), and 128 MiB of
 * pointers at most.
 */
export const DEFAULT_LIMITS: PickleLimits = { maxStack: 100_000, maxMarks: 1_000, maxStringBytes: 1 << 30, maxListItems: 1 << 24 };

/** Takes the items appended to a list instead of the list keeping them. */
export type ListSink = (items: unknown[]) => void;
/**
 * Called for each new list near the top (the stack at most three deep) with where it is being
 * built: into `parent` (a dict, under `key`, or a list), or as the top-level object (parent
 * null); `parentIsRoot` when the parent is the top-level object. Return a sink to take the
 * list's items.
 */
export type NewListHook = (list: unknown[], parent: object | null, key: string | null, parentIsRoot: boolean) => ListSink | null;

export interface PickleReaderOptions {
  limits?: Partial<PickleLimits>;
  /** Memo indices some GET refers to, as a bit set (MemoGetScanner.gets); null keeps every entry. */
  keepMemo?: Uint8Array | null;
  onNewList?: NewListHook;
  /** The size of the whole pickle, when known: no length may point past it. */
  totalBytes?: number | null;
}

const REFUSED: ReadonlySet<string> = new Set(['GLOBAL', 'STACK_GLOBAL', 'REDUCE', 'BUILD', 'INST', 'OBJ', 'NEWOBJ', 'NEWOBJ_EX', 'EXT1', 'EXT2', 'EXT4', 'PERSID', 'BINPERSID', 'NEXT_BUFFER', 'READONLY_BUFFER']);
const TEXT_PROTOCOL: ReadonlySet<string> = new Set(['INT', 'LONG', 'FLOAT', 'STRING', 'UNICODE', 'GET', 'PUT']);

const TWO_32 = 2 ** 32;

/**
 * A Python dict. Instances get hidden classes like any object (a snapshot's millions of blocks
 * share one shape), but their prototype is empty: no key, "__proto__" included, reaches
 * Object.prototype.
 */
export const PyDict = function PyDict(this: object) {} as unknown as { new (): Record<string, unknown> };
PyDict.prototype = Object.create(null) as Record<string, unknown>;

export function isDict(value: unknown): value is Record<string, unknown> {
  return value instanceof PyDict;
}

/** LONG1/LONG4: little-endian two's complement; a number when exact, else a BigInt. */
function decodeLong(buf: Buffer, start: number, n: number): number | bigint {
  if (n === 0) return 0;
  if (n <= 6) return buf.readIntLE(start, n);
  if (n <= 8) {
    // Low 32 bits unsigned, the rest signed: exact whenever the result is a safe integer.
    const value = buf.readUInt32LE(start) + buf.readIntLE(start + 4, n - 4) * TWO_32;
    if (Number.isSafeInteger(value)) return value;
  }
  let value = 0n;
  for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(buf[start + i]!);
  if (buf[start + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

/** Refuses a list about to pass `max` items. */
function grown(list: unknown[], adding: number, max: number): void {
  if (list.length + adding > max) fail(`a list of more than ${max} items, longer than any a memory snapshot holds (its segments and trace entries are read as they come)`);
}

export class PickleReader {
  protocol: number | null = null;
  done = false;
  result: unknown = undefined;
  readonly #limits: PickleLimits;
  readonly #onNewList: NewListHook | null;
  readonly #total: number | null;
  readonly #stack: unknown[] = [];
  readonly #marks: number[] = [];
  readonly #memo: PickleMemo;
  readonly #sinks = new Map<unknown[], ListSink>();
  /** The stack index where the items of a sink list begin, while they are being built. */
  #sinkItemsFrom = -1;
  #memoSize = 0;

  constructor(options: PickleReaderOptions = {}) {
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#memo = new PickleMemo(options.keepMemo ?? null);
    this.#onNewList = options.onNewList ?? null;
    this.#total = options.totalBytes ?? null;
  }

  /**
   * Runs the opcodes in `buf` (whose first byte is at `base` in the whole pickle). Returns how
   * many bytes it used and, when it stopped before an incomplete opcode, how many bytes from
   * there that opcode needs (0 once STOP was read).
   */
  decode(buf: Buffer, base: number): { consumed: number; need: number } {
    const stack = this.#stack;
    const marks = this.#marks;
    const memo = this.#memo;
    const { maxStack, maxMarks, maxStringBytes, maxListItems } = this.#limits;
    const end = buf.length;
    const total = this.#total;
    // `pos` is read and written by no closure, so it stays in a register: the helpers below
    // throw without an offset and the catch at the end adds it.
    let pos = 0;
    const push = (value: unknown): void => {
      if (stack.length >= maxStack) fail(`more than ${maxStack} items on the pickle stack`);
      stack.push(value);
    };
    const pop = (): unknown => {
      if (stack.length === 0 || marks[marks.length - 1] === stack.length) fail('{op} on an empty stack');
      return stack.pop();
    };
    const popMark = (): number => {
      const mark = marks.pop();
      if (mark === undefined) fail('{op} without a MARK');
      return mark!;
    };
    /** Checks a length read at `at` (the opcode's offset) with `header` bytes before the payload. */
    const length = (n: number, header: number, at: number): number => {
      if (n > maxStringBytes) fail(`a string or bytes of ${n} bytes (limit ${maxStringBytes})`);
      if (total !== null && at + header + n > total) fail(`{op} announces ${n} bytes but only ${total - at - header} remain in the file (truncated?)`);
      return n;
    };
    const u64 = (at: number): number => buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;

    try {
    if (this.protocol === null && end > 0 && buf[0] !== 0x80) {
      // torch.save writes a zip archive ("PK\x03\x04"); its first byte would read as PERSID.
      if (buf[0] === 0x50 && (end < 2 || buf[1] === 0x4b)) fail('a zip archive: torch.save output, not a memory snapshot (torch.cuda.memory._dump_snapshot writes a pickle)');
      fail('not a pickle of protocol 2 to 5: it starts with {op}, not PROTO');
    }
    while (pos < end) {
      const op = buf[pos]!;
      switch (op) {
        case 0x80: {
          // PROTO
          if (end - pos < 2) return { consumed: pos, need: 2 };
          const version = buf[pos + 1]!;
          if (version < 2 || version > 5) fail(`pickle protocol ${version} is not supported (snapshots are protocol 2 to 5)`);
          this.protocol = version;
          pos += 2;
          break;
        }
        case 0x95: {
          // FRAME: a hint of the next bytes' length; only checked.
          if (end - pos < 9) return { consumed: pos, need: 9 };
          const n = u64(pos + 1);
          if (total !== null && base + pos + 9 + n > total) fail(`FRAME announces ${n} bytes but only ${total - base - pos - 9} remain in the file (truncated?)`);
          pos += 9;
          break;
        }
        case 0x2e: {
          // STOP
          this.result = pop();
          this.done = true;
          return { consumed: pos + 1, need: 0 };
        }
        case 0x28:
          if (marks.length >= maxMarks) fail(`containers nested deeper than ${maxMarks}`);
          marks.push(stack.length);
          if (stack.length > 0 && this.#sinks.has(stack[stack.length - 1] as unknown[])) this.#sinkItemsFrom = stack.length;
          pos += 1;
          break;
        case 0x30: {
          // POP: the top item, or a MARK right on top.
          if (marks[marks.length - 1] === stack.length) marks.pop();
          else pop();
          pos += 1;
          break;
        }
        case 0x31: {
          const mark = popMark();
          if (mark === this.#sinkItemsFrom) this.#sinkItemsFrom = -1;
          stack.length = mark;
          pos += 1;
          break;
        }
        case 0x32:
          if (stack.length === 0) fail('DUP on an empty stack');
          push(stack[stack.length - 1]);
          pos += 1;
          break;
        case 0x7d:
          // A new dict among a sink list's items: the items before it are complete; hand them
          // over now rather than at APPENDS (a batch of up to 1000 whole segments).
          if (this.#sinkItemsFrom !== -1 && stack.length > this.#sinkItemsFrom && marks[marks.length - 1] === this.#sinkItemsFrom) {
            const sink = this.#sinks.get(stack[this.#sinkItemsFrom - 1] as unknown[]);
            if (sink !== undefined) sink(stack.splice(this.#sinkItemsFrom));
          }
          push(new PyDict());
          pos += 1;
          break;
        case 0x5d: {
          const list: unknown[] = [];
          // Only lists at the top two levels are offered (a snapshot's segments and traces):
          // asking for the millions of lists deeper down would cost time for nothing.
          if (this.#onNewList !== null && stack.length <= 3) {
            const sink = this.#onNewList(list, ...this.#whereBuilt());
            if (sink !== null) this.#sinks.set(list, sink);
          }
          push(list);
          pos += 1;
          break;
        }
        case 0x29:
        case 0x8f:
          push([]);
          pos += 1;
          break;
        case 0x4e:
          push(null);
          pos += 1;
          break;
        case 0x88:
          push(true);
          pos += 1;
          break;
        case 0x89:
          push(false);
          pos += 1;
          break;
        case 0x4b:
          if (end - pos < 2) return { consumed: pos, need: 2 };
          push(buf[pos + 1]);
          pos += 2;
          break;
        case 0x4d:
          if (end - pos < 3) return { consumed: pos, need: 3 };
          push(buf.readUInt16LE(pos + 1));
          pos += 3;
          break;
        case 0x4a:
          if (end - pos < 5) return { consumed: pos, need: 5 };
          push(buf.readInt32LE(pos + 1));
          pos += 5;
          break;
        case 0x8a: {
          if (end - pos < 2) return { consumed: pos, need: 2 };
          const n = buf[pos + 1]!;
          if (end - pos < 2 + n) return { consumed: pos, need: 2 + n };
          push(decodeLong(buf, pos + 2, n));
          pos += 2 + n;
          break;
        }
        case 0x8b: {
          if (end - pos < 5) return { consumed: pos, need: 5 };
          const n = buf.readInt32LE(pos + 1);
          if (n < 0) fail('LONG4 with a negative length');
          length(n, 5, base + pos);
          if (n > 64) fail(`LONG4 of ${n} bytes: no snapshot holds an integer that large`);
          if (end - pos < 5 + n) return { consumed: pos, need: 5 + n };
          push(decodeLong(buf, pos + 5, n));
          pos += 5 + n;
          break;
        }
        case 0x47:
          if (end - pos < 9) return { consumed: pos, need: 9 };
          push(buf.readDoubleBE(pos + 1));
          pos += 9;
          break;
        case 0x8c:
        case 0x55:
        case 0x43: {
          // SHORT_BINUNICODE, SHORT_BINSTRING, SHORT_BINBYTES: 1-byte length.
          if (end - pos < 2) return { consumed: pos, need: 2 };
          const n = buf[pos + 1]!;
          if (end - pos < 2 + n) return { consumed: pos, need: 2 + n };
          push(op === 0x8c ? buf.toString('utf8', pos + 2, pos + 2 + n) : op === 0x55 ? buf.toString('latin1', pos + 2, pos + 2 + n) : Buffer.from(buf.subarray(pos + 2, pos + 2 + n)));
          pos += 2 + n;
          break;
        }
        case 0x58:
        case 0x54:
        case 0x42: {
          // BINUNICODE, BINSTRING, BINBYTES: 4-byte length.
          if (end - pos < 5) return { consumed: pos, need: 5 };
          const n = op === 0x54 ? buf.readInt32LE(pos + 1) : buf.readUInt32LE(pos + 1);
          if (n < 0) fail('BINSTRING with a negative length');
          length(n, 5, base + pos);
          if (end - pos < 5 + n) return { consumed: pos, need: 5 + n };
          push(op === 0x58 ? buf.toString('utf8', pos + 5, pos + 5 + n) : op === 0x54 ? buf.toString('latin1', pos + 5, pos + 5 + n) : Buffer.from(buf.subarray(pos + 5, pos + 5 + n)));
          pos += 5 + n;
          break;
        }
        case 0x8d:
        case 0x8e:
        case 0x96: {
          // BINUNICODE8, BINBYTES8, BYTEARRAY8: 8-byte length.
          if (end - pos < 9) return { consumed: pos, need: 9 };
          const n = length(u64(pos + 1), 9, base + pos);
          if (end - pos < 9 + n) return { consumed: pos, need: 9 + n };
          push(op === 0x8d ? buf.toString('utf8', pos + 9, pos + 9 + n) : Buffer.from(buf.subarray(pos + 9, pos + 9 + n)));
          pos += 9 + n;
          break;
        }
        case 0x94: {
          // MEMOIZE
          if (stack.length === 0) fail('MEMOIZE on an empty stack');
          memo.set(this.#memoSize++, stack[stack.length - 1]);
          pos += 1;
          break;
        }
        case 0x71:
        case 0x72: {
          // BINPUT, LONG_BINPUT
          const size = op === 0x71 ? 2 : 5;
          if (end - pos < size) return { consumed: pos, need: size };
          if (stack.length === 0) fail(`${describeOpcode(op)} on an empty stack`);
          const index = op === 0x71 ? buf[pos + 1]! : buf.readUInt32LE(pos + 1);
          // A pickler numbers its memo from 0, one entry per object it stored, and each object
          // took at least a byte: an index past the offset is no pickler's (and the memo's place
          // for it, without the first pass's bit set, is the index itself).
          if (index > base + pos) fail(`{op} of memo index ${index}, more entries than the pickle has bytes before it`);
          if (index >= this.#memoSize) this.#memoSize = index + 1;
          memo.set(index, stack[stack.length - 1]);
          pos += size;
          break;
        }
        case 0x68:
        case 0x6a: {
          // BINGET, LONG_BINGET
          const size = op === 0x68 ? 2 : 5;
          if (end - pos < size) return { consumed: pos, need: size };
          const index = op === 0x68 ? buf[pos + 1]! : buf.readUInt32LE(pos + 1);
          const value = memo.get(index);
          if (value === undefined) fail(`${describeOpcode(op)} of memo entry ${index}, which was never stored`);
          push(value);
          pos += size;
          break;
        }
        case 0x61: {
          // APPEND
          const item = pop();
          this.#append(stack[stack.length - 1], [item]);
          pos += 1;
          break;
        }
        case 0x65: {
          // APPENDS
          const mark = popMark();
          if (mark === this.#sinkItemsFrom) this.#sinkItemsFrom = -1;
          const list = stack[mark - 1];
          if (!Array.isArray(list)) fail('APPENDS to something that is not a list');
          const sink = this.#sinks.get(list as unknown[]);
          if (sink !== undefined) sink(stack.splice(mark));
          else {
            grown(list as unknown[], stack.length - mark, maxListItems);
            for (let i = mark; i < stack.length; i++) (list as unknown[]).push(stack[i]);
            stack.length = mark;
          }
          pos += 1;
          break;
        }
        case 0x90: {
          // ADDITEMS (sets are read as lists)
          const mark = popMark();
          const set = stack[mark - 1];
          if (!Array.isArray(set)) fail('ADDITEMS to something that is not a set');
          grown(set as unknown[], stack.length - mark, maxListItems);
          for (const item of stack.splice(mark)) (set as unknown[]).push(item);
          pos += 1;
          break;
        }
        case 0x73: {
          // SETITEM
          const value = pop();
          const key = pop();
          this.#setItem(stack[stack.length - 1], key, value);
          pos += 1;
          break;
        }
        case 0x75: {
          // SETITEMS
          const mark = popMark();
          if ((stack.length - mark) % 2 !== 0) fail('SETITEMS with an odd number of items');
          const dict = stack[mark - 1];
          if (!isDict(dict)) fail('SETITEMS on something that is not a dict');
          for (let i = mark; i < stack.length; i += 2) {
            const key = stack[i];
            if (typeof key !== 'string') this.#setItem(dict, key, undefined);
            (dict as Record<string, unknown>)[key as string] = stack[i + 1];
          }
          stack.length = mark;
          pos += 1;
          break;
        }
        case 0x64:
        case 0x6c:
        case 0x74:
        case 0x91: {
          // DICT, LIST, TUPLE, FROZENSET: the items since the last MARK.
          const items = stack.splice(popMark());
          if (op === 0x64) {
            if (items.length % 2 !== 0) fail('DICT with an odd number of items');
            const dict = new PyDict();
            for (let i = 0; i < items.length; i += 2) this.#setItem(dict, items[i], items[i + 1]);
            push(dict);
          } else {
            push(items);
          }
          pos += 1;
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {
          // TUPLE1..3
          const n = op - 0x84;
          if (stack.length - (marks[marks.length - 1] ?? 0) < n) fail(`${describeOpcode(op)} with fewer than ${n} items`);
          push(stack.splice(stack.length - n));
          pos += 1;
          break;
        }
        default: {
          const name = OPCODES[op]?.name;
          if (name !== undefined && REFUSED.has(name)) {
            fail(`refused ${describeOpcode(op)}: it would import or call Python code, and gpu-layers never runs anything from a pickle (a PyTorch memory snapshot has no such opcode)`);
          }
          if (name !== undefined && TEXT_PROTOCOL.has(name)) fail(`${describeOpcode(op)} is a protocol 0 opcode; snapshots use protocol 2 to 5`);
          fail(`unknown opcode 0x${op.toString(16).padStart(2, '0')}`);
        }
      }
    }
    } catch (error) {
      if (error instanceof PickleFormatError && error.offset === -1) {
        throw new PickleFormatError(error.detail.replaceAll('{op}', describeOpcode(buf[pos] ?? 0)), base + pos);
      }
      throw error;
    }
    return { consumed: pos, need: 0 };
  }

  /** Where a list now being created will end up, from the shape of the stack. */
  #whereBuilt(): [object | null, string | null, boolean] {
    const stack = this.#stack;
    const n = stack.length;
    const mark = this.#marks[this.#marks.length - 1] ?? -1;
    if (n === 0) return [null, null, false];
    // [dict, MARK, key] -> a value of dict[key]
    if (mark === n - 1 && n >= 2 && typeof stack[n - 1] === 'string' && isDict(stack[n - 2])) return [stack[n - 2] as object, stack[n - 1] as string, n === 2];
    // [list, MARK] -> an item of list
    if (mark === n && Array.isArray(stack[n - 1])) return [stack[n - 1] as object, null, n === 1];
    return [{}, null, false];
  }

  #append(target: unknown, items: unknown[]): void {
    if (!Array.isArray(target)) fail('APPEND to something that is not a list');
    const sink = this.#sinks.get(target as unknown[]);
    if (sink !== undefined) sink(items);
    else {
      grown(target as unknown[], items.length, this.#limits.maxListItems);
      for (const item of items) (target as unknown[]).push(item);
    }
  }

  #setItem(target: unknown, key: unknown, value: unknown): void {
    if (!isDict(target)) fail('SETITEM on something that is not a dict');
    if (typeof key !== 'string') fail(`a dict key of type ${key === null ? 'None' : typeof key} (snapshots have only str keys)`);
    (target as Record<string, unknown>)[key as string] = value;
  }
}

const SIZE_OF_LAYOUT: Record<string, number> = { none: 1, u1: 2, u2: 3, i4: 5, u4: 5, f8: 9, u8: 9 };
/** Per opcode byte: its whole size when fixed; 0 when a length follows; -1 when it cannot be sized. */
const FIXED_SIZE = Int8Array.from(OPCODES, (o) => (o === undefined || o.arg.startsWith('line') ? -1 : (SIZE_OF_LAYOUT[o.arg] ?? 0)));
/** For a length-prefixed opcode: the bytes of its length field. */
const LENGTH_BYTES = Int8Array.from(OPCODES, (o) => (o?.arg === 'len1' ? 1 : o?.arg === 'len8' ? 8 : o?.arg.startsWith('len4') ? 4 : 0));

/**
 * The first pass: every memo index a GET refers to. It walks the opcodes by their layout alone
 * (no values built), so it is fast and needs no memory; the second pass then keeps only these
 * memo entries. Stops at STOP or at an opcode it cannot size (the second pass reports it).
 */
export class MemoGetScanner {
  /** A bit per memo index: set where some GET refers to it. */
  gets = new Uint8Array(1024);
  done = false;
  readonly #totalBytes: number;

  /** `totalBytes`: the pickle's size; no memo index can reach it (each put takes a byte). */
  constructor(totalBytes: number) {
    this.#totalBytes = totalBytes;
  }

  #get(index: number): void {
    // An index past any possible put is left out: the second pass reports the GET.
    if (index >= this.#totalBytes) return;
    const byte = index >>> 3;
    if (byte >= this.gets.length) {
      const grown = new Uint8Array(Math.max(byte + 1, this.gets.length * 2));
      grown.set(this.gets);
      this.gets = grown;
    }
    this.gets[byte]! |= 1 << (index & 7);
  }

  scan(buf: Buffer): { consumed: number; need: number } {
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      const op = buf[pos]!;
      let size = FIXED_SIZE[op]!;
      if (size < 0) {
        // Unknown and text opcodes end the scan: the second pass reports them.
        this.done = true;
        return { consumed: pos, need: 0 };
      }
      if (size === 0) {
        const lengthBytes = LENGTH_BYTES[op]!;
        if (end - pos < 1 + lengthBytes) return { consumed: pos, need: 1 + lengthBytes };
        size =
          1 +
          lengthBytes +
          (lengthBytes === 1 ? buf[pos + 1]! : lengthBytes === 4 ? Math.max(0, op === 0x54 || op === 0x8b ? buf.readInt32LE(pos + 1) : buf.readUInt32LE(pos + 1)) : buf.readUInt32LE(pos + 1) + buf.readUInt32LE(pos + 5) * TWO_32);
      } else if (end - pos < size) {
        return { consumed: pos, need: size };
      }
      if (op === 0x68) this.#get(buf[pos + 1]!);
      else if (op === 0x6a) this.#get(buf.readUInt32LE(pos + 1));
      else if (op === 0x2e) {
        this.done = true;
        return { consumed: pos + 1, need: 0 };
      }
      // A long payload is skipped without being read: `consumed` may then pass the buffer's end.
      pos += size;
    }
    return { consumed: pos, need: 0 };
  }
}
