/**
 * The pickle opcodes (protocols 0 to 5, as CPython's Lib/pickle.py and pickletools define them):
 * byte, name and how their argument is laid out, so a reader can skip or decode any of them.
 * Which ones gpu-layers' reader runs, and which it refuses, is decided in pickle-reader.ts.
 */

/** How an opcode's argument is stored after the opcode byte. */
export type ArgLayout =
  | 'none'
  | 'u1' // 1-byte unsigned
  | 'u2' // 2-byte unsigned little-endian
  | 'i4' // 4-byte signed little-endian
  | 'u4' // 4-byte unsigned little-endian
  | 'f8' // 8-byte big-endian double
  | 'u8' // 8-byte unsigned little-endian (FRAME)
  | 'len1' // 1-byte length, then that many bytes
  | 'len4' // 4-byte length, then bytes
  | 'len4s' // 4-byte signed length, then bytes (BINSTRING, LONG4)
  | 'len8' // 8-byte length, then bytes
  | 'line' // text up to a newline (protocol 0)
  | 'line2'; // two lines (GLOBAL, INST: module and name)

export interface Opcode {
  name: string;
  arg: ArgLayout;
}

const table: [number, string, ArgLayout][] = [
  [0x28, 'MARK', 'none'],
  [0x2e, 'STOP', 'none'],
  [0x30, 'POP', 'none'],
  [0x31, 'POP_MARK', 'none'],
  [0x32, 'DUP', 'none'],
  [0x46, 'FLOAT', 'line'],
  [0x49, 'INT', 'line'],
  [0x4a, 'BININT', 'i4'],
  [0x4b, 'BININT1', 'u1'],
  [0x4c, 'LONG', 'line'],
  [0x4d, 'BININT2', 'u2'],
  [0x4e, 'NONE', 'none'],
  [0x50, 'PERSID', 'line'],
  [0x51, 'BINPERSID', 'none'],
  [0x52, 'REDUCE', 'none'],
  [0x53, 'STRING', 'line'],
  [0x54, 'BINSTRING', 'len4s'],
  [0x55, 'SHORT_BINSTRING', 'len1'],
  [0x56, 'UNICODE', 'line'],
  [0x58, 'BINUNICODE', 'len4'],
  [0x61, 'APPEND', 'none'],
  [0x62, 'BUILD', 'none'],
  [0x63, 'GLOBAL', 'line2'],
  [0x64, 'DICT', 'none'],
  [0x7d, 'EMPTY_DICT', 'none'],
  [0x65, 'APPENDS', 'none'],
  [0x67, 'GET', 'line'],
  [0x68, 'BINGET', 'u1'],
  [0x69, 'INST', 'line2'],
  [0x6a, 'LONG_BINGET', 'u4'],
  [0x6c, 'LIST', 'none'],
  [0x5d, 'EMPTY_LIST', 'none'],
  [0x6f, 'OBJ', 'none'],
  [0x70, 'PUT', 'line'],
  [0x71, 'BINPUT', 'u1'],
  [0x72, 'LONG_BINPUT', 'u4'],
  [0x73, 'SETITEM', 'none'],
  [0x74, 'TUPLE', 'none'],
  [0x29, 'EMPTY_TUPLE', 'none'],
  [0x75, 'SETITEMS', 'none'],
  [0x47, 'BINFLOAT', 'f8'],
  [0x80, 'PROTO', 'u1'],
  [0x81, 'NEWOBJ', 'none'],
  [0x82, 'EXT1', 'u1'],
  [0x83, 'EXT2', 'u2'],
  [0x84, 'EXT4', 'i4'],
  [0x85, 'TUPLE1', 'none'],
  [0x86, 'TUPLE2', 'none'],
  [0x87, 'TUPLE3', 'none'],
  [0x88, 'NEWTRUE', 'none'],
  [0x89, 'NEWFALSE', 'none'],
  [0x8a, 'LONG1', 'len1'],
  [0x8b, 'LONG4', 'len4s'],
  [0x42, 'BINBYTES', 'len4'],
  [0x43, 'SHORT_BINBYTES', 'len1'],
  [0x8c, 'SHORT_BINUNICODE', 'len1'],
  [0x8d, 'BINUNICODE8', 'len8'],
  [0x8e, 'BINBYTES8', 'len8'],
  [0x8f, 'EMPTY_SET', 'none'],
  [0x90, 'ADDITEMS', 'none'],
  [0x91, 'FROZENSET', 'none'],
  [0x92, 'NEWOBJ_EX', 'none'],
  [0x93, 'STACK_GLOBAL', 'none'],
  [0x94, 'MEMOIZE', 'none'],
  [0x95, 'FRAME', 'u8'],
  [0x96, 'BYTEARRAY8', 'len8'],
  [0x97, 'NEXT_BUFFER', 'none'],
  [0x98, 'READONLY_BUFFER', 'none'],
];

/** Indexed by the opcode byte; undefined for a byte that is no opcode. */
export const OPCODES: readonly (Opcode | undefined)[] = (() => {
  const byByte: (Opcode | undefined)[] = new Array(256).fill(undefined);
  for (const [byte, name, arg] of table) byByte[byte] = { name, arg };
  return byByte;
})();

/** "GLOBAL (0x63 'c')": how errors name an opcode. */
export function describeOpcode(byte: number): string {
  const name = OPCODES[byte]?.name ?? 'unknown opcode';
  const printable = byte >= 0x20 && byte < 0x7f ? ` '${String.fromCharCode(byte)}'` : '';
  return `${name} (0x${byte.toString(16).padStart(2, '0')}${printable})`;
}
