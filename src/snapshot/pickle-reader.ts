/**
 * A restricted pickle reader: builds plain data (dicts as null-prototype objects, lists and
 * tuples and sets as arrays, str, int, float, bool, None, bytes) from protocols 2 to 5, and
 * refuses every opcode that would import or call anything (GLOBAL, STACK_GLOBAL, REDUCE, BUILD,
 * INST, OBJ, NEWOBJ, EXT*, persistent ids, out-of-band buffers), naming it and its offset.
 * Nothing in a pickle is ever executed.
 *
 * It is resumable: decode() takes whatever bytes have arrived and stops before an opcode that is
 * not complete yet, saying how many bytes it needs, so a file streams through a small buffer. It
 * is bounded: stack height, MARK depth and the length of any one string or bytes object have
 * limits, and lengths are checked against the file's size before anything is allocated. The memo
 * keeps only entries a later GET refers to (found by scanMemoGets, a first pass), and a caller
 * may take the items of chosen lists as they are appended (onNewList), so a snapshot's blocks are
 * analysed and dropped instead of held: memory stays far below the file's size.
 */
import { describeOpcode, OPCODES } from './pickle-opcodes.js';

export class PickleFormatError extends Error {
  readonly offset: number;
  constructor(message: string, offset: number) {
    super(`${message} at offset ${offset}`);
    this.name = 'PickleFormatError';
    this.offset = offset;
  }
}

export interface PickleLimits {
  /** Items on the stack at once (CPython's pickler batches containers by 1000). */
  maxStack: number;
  /** Open MARKs at once: how deep containers nest while they are built. */
  maxMarks: number;
  /** Bytes in one string or bytes object. */
  maxStringBytes: number;
}

export const DEFAULT_LIMITS: PickleLimits = { maxStack: 100_000, maxMarks: 1_000, maxStringBytes: 1 << 30 };

/** Takes the items appended to a list instead of the list keeping them. */
export type ListSink = (items: unknown[]) => void;
/**
 * Called for each new list with where it is being built: into `parent` (a dict, under `key`, or
 * a list), or as the top-level object (parent null); `parentIsRoot` when the parent is the
 * top-level object. Return a sink to take the list's items.
 */
export type NewListHook = (list: unknown[], parent: object | null, key: string | null, parentIsRoot: boolean) => ListSink | null;

export interface PickleReaderOptions {
  limits?: Partial<PickleLimits>;
  /** Memo indices some GET refers to; null keeps every entry. */
  keepMemo?: ReadonlySet<number> | null;
  onNewList?: NewListHook;
  /** The size of the whole pickle, when known: no length may point past it. */
  totalBytes?: number | null;
}

const REFUSED = new Set(['GLOBAL', 'STACK_GLOBAL', 'REDUCE', 'BUILD', 'INST', 'OBJ', 'NEWOBJ', 'NEWOBJ_EX', 'EXT1', 'EXT2', 'EXT4', 'PERSID', 'BINPERSID', 'NEXT_BUFFER', 'READONLY_BUFFER']);
const TEXT_PROTOCOL = new Set(['INT', 'LONG', 'FLOAT', 'STRING', 'UNICODE', 'GET', 'PUT']);

const TWO_32 = 2 ** 32;

export function isDict(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** LONG1/LONG4: little-endian two's complement; a number when exact, else a BigInt. */
function decodeLong(buf: Buffer, start: number, n: number): number | bigint {
  if (n === 0) return 0;
  if (n <= 6) return n === 6 ? buf.readIntLE(start, 6) : buf.readIntLE(start, n);
  let value = 0n;
  for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(buf[start + i]!);
  if (buf[start + n - 1]! & 0x80) value -= 1n << BigInt(8 * n);
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
}

export class PickleReader {
  protocol: number | null = null;
  done = false;
  result: unknown = undefined;
  readonly #limits: PickleLimits;
  readonly #keep: ReadonlySet<number> | null;
  readonly #onNewList: NewListHook | null;
  readonly #total: number | null;
  readonly #stack: unknown[] = [];
  readonly #marks: number[] = [];
  readonly #memo = new Map<number, unknown>();
  readonly #sinks = new Map<unknown[], ListSink>();
  #memoSize = 0;

  constructor(options: PickleReaderOptions = {}) {
    this.#limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.#keep = options.keepMemo ?? null;
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
    const end = buf.length;
    let pos = 0;
    const fail = (message: string): never => {
      throw new PickleFormatError(message, base + pos);
    };
    const push = (value: unknown): void => {
      if (stack.length >= this.#limits.maxStack) fail(`more than ${this.#limits.maxStack} items on the pickle stack`);
      stack.push(value);
    };
    const pop = (): unknown => {
      if (stack.length === 0 || this.#marks[this.#marks.length - 1] === stack.length) fail(`${describeOpcode(buf[pos]!)} on an empty stack`);
      return stack.pop();
    };
    const popMark = (): number => {
      const mark = this.#marks.pop();
      if (mark === undefined) fail(`${describeOpcode(buf[pos]!)} without a MARK`);
      return mark!;
    };
    const length = (n: number, header: number): number => {
      if (n > this.#limits.maxStringBytes) fail(`a string or bytes of ${n} bytes (limit ${this.#limits.maxStringBytes})`);
      if (this.#total !== null && base + pos + header + n > this.#total) fail(`${describeOpcode(buf[pos]!)} announces ${n} bytes but only ${this.#total - base - pos - header} remain in the file (truncated?)`);
      return n;
    };
    const u64 = (at: number): number => buf.readUInt32LE(at) + buf.readUInt32LE(at + 4) * TWO_32;

    while (pos < end) {
      const op = buf[pos]!;
      if (this.protocol === null && op !== 0x80) fail(`not a pickle of protocol 2 to 5: it starts with ${describeOpcode(op)}, not PROTO`);
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
          if (this.#total !== null && base + pos + 9 + n > this.#total) fail(`FRAME announces ${n} bytes but only ${this.#total - base - pos - 9} remain in the file (truncated?)`);
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
          if (this.#marks.length >= this.#limits.maxMarks) fail(`containers nested deeper than ${this.#limits.maxMarks}`);
          this.#marks.push(stack.length);
          pos += 1;
          break;
        case 0x30: {
          // POP: the top item, or a MARK right on top.
          if (this.#marks[this.#marks.length - 1] === stack.length) this.#marks.pop();
          else pop();
          pos += 1;
          break;
        }
        case 0x31: {
          stack.length = popMark();
          pos += 1;
          break;
        }
        case 0x32:
          if (stack.length === 0) fail('DUP on an empty stack');
          push(stack[stack.length - 1]);
          pos += 1;
          break;
        case 0x7d:
          push(Object.create(null));
          pos += 1;
          break;
        case 0x5d: {
          const list: unknown[] = [];
          if (this.#onNewList !== null) {
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
          length(n, 5);
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
          length(n, 5);
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
          const n = length(u64(pos + 1), 9);
          if (end - pos < 9 + n) return { consumed: pos, need: 9 + n };
          push(op === 0x8d ? buf.toString('utf8', pos + 9, pos + 9 + n) : Buffer.from(buf.subarray(pos + 9, pos + 9 + n)));
          pos += 9 + n;
          break;
        }
        case 0x94: {
          // MEMOIZE
          if (stack.length === 0) fail('MEMOIZE on an empty stack');
          const index = this.#memoSize++;
          if (this.#keep === null || this.#keep.has(index)) this.#memo.set(index, stack[stack.length - 1]);
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
          if (index >= this.#memoSize) this.#memoSize = index + 1;
          if (this.#keep === null || this.#keep.has(index)) this.#memo.set(index, stack[stack.length - 1]);
          pos += size;
          break;
        }
        case 0x68:
        case 0x6a: {
          // BINGET, LONG_BINGET
          const size = op === 0x68 ? 2 : 5;
          if (end - pos < size) return { consumed: pos, need: size };
          const index = op === 0x68 ? buf[pos + 1]! : buf.readUInt32LE(pos + 1);
          if (!this.#memo.has(index)) fail(`${describeOpcode(op)} of memo entry ${index}, which was never stored`);
          push(this.#memo.get(index));
          pos += size;
          break;
        }
        case 0x61: {
          // APPEND
          const item = pop();
          this.#append(stack[stack.length - 1], [item], fail);
          pos += 1;
          break;
        }
        case 0x65: {
          // APPENDS
          const mark = popMark();
          const items = stack.splice(mark);
          this.#append(stack[mark - 1], items, fail);
          pos += 1;
          break;
        }
        case 0x90: {
          // ADDITEMS (sets are read as lists)
          const mark = popMark();
          const items = stack.splice(mark);
          const set = stack[mark - 1];
          if (!Array.isArray(set)) fail('ADDITEMS to something that is not a set');
          for (const item of items) (set as unknown[]).push(item);
          pos += 1;
          break;
        }
        case 0x73: {
          // SETITEM
          const value = pop();
          const key = pop();
          this.#setItem(stack[stack.length - 1], key, value, fail);
          pos += 1;
          break;
        }
        case 0x75: {
          // SETITEMS
          const mark = popMark();
          const items = stack.splice(mark);
          if (items.length % 2 !== 0) fail('SETITEMS with an odd number of items');
          const dict = stack[mark - 1];
          for (let i = 0; i < items.length; i += 2) this.#setItem(dict, items[i], items[i + 1], fail);
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
            const dict = Object.create(null) as Record<string, unknown>;
            for (let i = 0; i < items.length; i += 2) this.#setItem(dict, items[i], items[i + 1], fail);
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
          if (stack.length - (this.#marks[this.#marks.length - 1] ?? 0) < n) fail(`${describeOpcode(op)} with fewer than ${n} items`);
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

  #append(target: unknown, items: unknown[], fail: (message: string) => never): void {
    if (!Array.isArray(target)) fail('APPEND to something that is not a list');
    const sink = this.#sinks.get(target as unknown[]);
    if (sink !== undefined) sink(items);
    else for (const item of items) (target as unknown[]).push(item);
  }

  #setItem(target: unknown, key: unknown, value: unknown, fail: (message: string) => never): void {
    if (!isDict(target)) fail('SETITEM on something that is not a dict');
    if (typeof key !== 'string') fail(`a dict key of type ${key === null ? 'None' : typeof key} (snapshots have only str keys)`);
    (target as Record<string, unknown>)[key as string] = value;
  }
}

/**
 * The first pass: every memo index a GET refers to. It walks the opcodes by their layout alone
 * (no values built), so it is fast and needs no memory; the second pass then keeps only these
 * memo entries. Stops at STOP or at an opcode it cannot size (the second pass reports it).
 */
export class MemoGetScanner {
  readonly gets = new Set<number>();
  done = false;

  scan(buf: Buffer): { consumed: number; need: number } {
    let pos = 0;
    const end = buf.length;
    while (pos < end) {
      const op = buf[pos]!;
      const layout = OPCODES[op]?.arg;
      let size: number;
      switch (layout) {
        case undefined:
        case 'line':
        case 'line2':
          // Unknown and text opcodes end the scan: the second pass reports them.
          this.done = true;
          return { consumed: pos, need: 0 };
        case 'none':
          size = 1;
          break;
        case 'u1':
          size = 2;
          break;
        case 'u2':
          size = 3;
          break;
        case 'i4':
        case 'u4':
          size = 5;
          break;
        case 'f8':
        case 'u8':
          size = 9;
          break;
        case 'len1':
          if (end - pos < 2) return { consumed: pos, need: 2 };
          size = 2 + buf[pos + 1]!;
          break;
        case 'len4':
        case 'len4s': {
          if (end - pos < 5) return { consumed: pos, need: 5 };
          const n = buf.readInt32LE(pos + 1);
          size = 5 + (layout === 'len4' ? buf.readUInt32LE(pos + 1) : Math.max(0, n));
          break;
        }
        case 'len8':
          if (end - pos < 9) return { consumed: pos, need: 9 };
          size = 9 + buf.readUInt32LE(pos + 1) + buf.readUInt32LE(pos + 5) * TWO_32;
          break;
      }
      if (op === 0x68 || op === 0x6a) {
        if (end - pos < size) return { consumed: pos, need: size };
        this.gets.add(op === 0x68 ? buf[pos + 1]! : buf.readUInt32LE(pos + 1));
      } else if (op === 0x2e) {
        this.done = true;
        return { consumed: pos + 1, need: 0 };
      }
      if (end - pos < size && size <= 9) return { consumed: pos, need: size };
      // A long payload is skipped without being read: `consumed` may then pass the buffer's end.
      pos += size;
    }
    return { consumed: pos, need: 0 };
  }
}
