/**
 * Reads the protobuf wire format: a message as a sequence of (field number, wire type, value).
 * Just enough for the kubelet's pod-resources answer, without a protobuf library: varints and
 * length-delimited fields are read, fixed 32/64-bit fields skipped, anything else (groups, a wire
 * type that does not exist, a length past the end, a varint longer than ten bytes) is a
 * ProtobufWireError, never a wrong value. Wire format facts: protobuf.dev, "Encoding".
 */

export class ProtobufWireError extends Error {
  constructor(
    message: string,
    /** Byte offset in the message being read, where one tells more. */
    readonly offset: number | null = null,
  ) {
    super(offset === null ? message : `${message} at byte ${offset}`);
    this.name = 'ProtobufWireError';
  }
}

export type WireField =
  | { field: number; wireType: 'varint'; value: bigint }
  | { field: number; wireType: 'bytes'; bytes: Uint8Array }
  | { field: number; wireType: 'fixed' };

/** A varint's value (up to 64 bits) and the offset after it. */
function readVarint(bytes: Uint8Array, offset: number): { value: bigint; next: number } {
  let value = 0n;
  for (let i = 0; i < 10; i++) {
    const at = offset + i;
    if (at >= bytes.length) throw new ProtobufWireError('varint cut off by the end of the message', offset);
    const byte = bytes[at]!;
    value |= BigInt(byte & 0x7f) << BigInt(7 * i);
    if ((byte & 0x80) === 0) return { value: BigInt.asUintN(64, value), next: at + 1 };
  }
  throw new ProtobufWireError('varint longer than 10 bytes', offset);
}

/** The fields of one message, in the order they are written; nested messages are left as bytes. */
export function* wireFields(bytes: Uint8Array): Generator<WireField, void, undefined> {
  let offset = 0;
  while (offset < bytes.length) {
    const start = offset;
    const tag = readVarint(bytes, offset);
    offset = tag.next;
    // Field numbers are 1 .. 2^29 - 1; the low three bits of the tag are the wire type.
    const field = Number(tag.value >> 3n);
    const wireType = Number(tag.value & 7n);
    if (field === 0 || tag.value >> 3n > 0x1fffffffn) throw new ProtobufWireError(`field number ${tag.value >> 3n} out of range`, start);
    switch (wireType) {
      case 0: {
        const varint = readVarint(bytes, offset);
        offset = varint.next;
        yield { field, wireType: 'varint', value: varint.value };
        break;
      }
      case 1:
      case 5: {
        const size = wireType === 1 ? 8 : 4;
        if (offset + size > bytes.length) throw new ProtobufWireError(`fixed${size * 8} field ${field} cut off by the end of the message`, start);
        offset += size;
        yield { field, wireType: 'fixed' };
        break;
      }
      case 2: {
        const length = readVarint(bytes, offset);
        offset = length.next;
        if (length.value > BigInt(bytes.length - offset)) {
          throw new ProtobufWireError(`field ${field} says ${length.value} bytes, ${bytes.length - offset} are left`, start);
        }
        const end = offset + Number(length.value);
        yield { field, wireType: 'bytes', bytes: bytes.subarray(offset, end) };
        offset = end;
        break;
      }
      default:
        // 3 and 4 are proto2 groups (no proto3 message has them); 6 and 7 do not exist.
        throw new ProtobufWireError(`wire type ${wireType} of field ${field} is not one a proto3 message uses`, start);
    }
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** A `string` field's text: protobuf requires valid UTF-8, and a string that is not is an error. */
export function wireString(bytes: Uint8Array, field: number): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw new ProtobufWireError(`string field ${field} is not valid UTF-8`);
  }
}
