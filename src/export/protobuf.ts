/**
 * A small protobuf *encoder* (wire format only; no schema, no decoding): enough to write
 * ONNX's ModelProto. Messages are lists of byte chunks with a known total length, so a
 * 300 MB model is never assembled in one buffer: tensor payloads are referenced, not
 * copied, and the chunks are streamed to disk.
 *
 * Fields must be added in field-number order to get the bytes protoc-generated code
 * writes (the ONNX Python package serializes that way; the tests compare bytes).
 * Repeated scalars are written unpacked, as proto2 (onnx.proto's syntax) does by default.
 */
import { RepmlpError } from '../errors.js';

export class ProtobufError extends RepmlpError {
  override name = 'ProtobufError';
}

const enum WireType {
  Varint = 0,
  Fixed64 = 1,
  LengthDelimited = 2,
  Fixed32 = 5,
}

/** Largest message protobuf parsers accept (2 GiB - 1). */
export const MAX_MESSAGE_BYTES = 2 ** 31 - 1;

const textEncoder = new TextEncoder();

/** Varint bytes of a non-negative integer or a (possibly negative, two's complement) int64. */
export function encodeVarint(value: number | bigint): Uint8Array {
  let v: bigint;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) throw new ProtobufError(`varint ${value} is not a safe integer`);
    v = BigInt(value);
  } else v = value;
  if (v < 0n) {
    if (v < -(1n << 63n)) throw new ProtobufError(`varint ${v} is below int64 range`);
    v = BigInt.asUintN(64, v);
  } else if (v >= 1n << 64n) throw new ProtobufError(`varint ${v} exceeds 64 bits`);
  // Fast path for the common small case, no BigInt loop.
  if (v < 128n) return Uint8Array.of(Number(v));
  const out: number[] = [];
  while (v >= 128n) {
    out.push(Number(v & 127n) | 128);
    v >>= 7n;
  }
  out.push(Number(v));
  return Uint8Array.from(out);
}

/** A message under construction: chunks and their total length. */
export class Message {
  readonly chunks: Uint8Array[] = [];
  private size = 0;

  get byteLength(): number {
    return this.size;
  }

  private push(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.byteLength;
    if (this.size > Number.MAX_SAFE_INTEGER) throw new ProtobufError('message too large');
  }

  private tag(field: number, wire: WireType): void {
    if (!Number.isInteger(field) || field < 1 || field > 536870911) throw new ProtobufError(`bad field number ${field}`);
    this.push(encodeVarint(field * 8 + wire));
  }

  /** int32/int64/uint64/enum/bool field. */
  varint(field: number, value: number | bigint | boolean): this {
    this.tag(field, WireType.Varint);
    this.push(encodeVarint(typeof value === 'boolean' ? (value ? 1 : 0) : value));
    return this;
  }

  /** Repeated int64, unpacked (one tag per value). */
  varints(field: number, values: Iterable<number | bigint>): this {
    for (const v of values) this.varint(field, v);
    return this;
  }

  float(field: number, value: number): this {
    this.tag(field, WireType.Fixed32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    this.push(b);
    return this;
  }

  /** bytes field; the payload is referenced, not copied (keep it unchanged until written). */
  bytes(field: number, payload: Uint8Array): this {
    this.tag(field, WireType.LengthDelimited);
    this.push(encodeVarint(payload.byteLength));
    if (payload.byteLength) this.push(payload);
    return this;
  }

  string(field: number, s: string): this {
    return this.bytes(field, textEncoder.encode(s));
  }

  message(field: number, m: Message): this {
    this.tag(field, WireType.LengthDelimited);
    this.push(encodeVarint(m.byteLength));
    for (const c of m.chunks) this.push(c);
    return this;
  }

  /** The whole message in one buffer (small messages and tests). */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let o = 0;
    for (const c of this.chunks) {
      out.set(c, o);
      o += c.byteLength;
    }
    return out;
  }
}
