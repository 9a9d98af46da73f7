/**
 * Tensors as torch stores them: a typed storage of raw bytes, plus shape, strides (in
 * elements) and a storage offset. Bytes are kept exactly (float16 / bfloat16 too);
 * float32 copies are made only where something is computed.
 */
import { type DType, type TypedArray, dtypeInfo } from './dtype.js';
import { RepmlpError } from './errors.js';
import type { FileRegion } from './io/copy.js';

/** The largest single array Node can allocate. */
const MAX_BYTES = 2 ** 32;
/** Storages from this size on are copied from their file region when written. */
const REGION_MIN = 1 << 20;

export class TensorError extends RepmlpError {
  override name = 'TensorError';
}

/**
 * A storage: `numel` elements of `dtype`. Its bytes are loaded on first use (a lazy zip
 * record, a legacy file region) and then kept, so shared storages stay shared.
 */
export class Storage {
  private data: Uint8Array | undefined;
  /** Bytes read ahead by prefetch(), handed to the next reader. */
  private ahead: Uint8Array | undefined;
  /** The prefetch whose result is still wanted (a later reader or prefetch drops it). */
  private aheadRead: object | undefined;
  constructor(
    readonly dtype: DType,
    readonly numel: number,
    source: Uint8Array | (() => Uint8Array),
    /** The key the file stored it under (zip `data/<key>`), informational. */
    readonly key?: string,
    /** The device the file names ('cpu', 'cuda:0'); loading ignores it. */
    readonly device: string = 'cpu',
  ) {
    if (typeof source === 'function') this.load = source;
    else this.data = source;
  }
  private load: (() => Uint8Array) | undefined;
  /**
   * The CRC-32 the source zip records for these bytes. The zip writer reuses it: no
   * second pass over the data, and a record corrupted in the source stays detectably
   * corrupt (a fresh CRC would bless it).
   */
  sourceCrc32?: number;
  /** Where the bytes lie in the source file, while they are not loaded (see region()). */
  sourceRegion?: FileRegion;

  get byteLength(): number {
    return this.numel * dtypeInfo(this.dtype).itemSize;
  }

  /** The raw little-endian bytes, loaded on demand. */
  bytes(): Uint8Array {
    if (!this.data) {
      this.data = this.readOnce();
      this.load = undefined;
    }
    return this.data;
  }

  /**
   * The bytes without keeping them: writers streaming a file larger than memory read
   * each storage once and let it go. Returns the kept bytes when already loaded.
   */
  bytesUncached(): Uint8Array {
    return this.data ?? this.readOnce();
  }

  /**
   * `length` bytes from `byteOffset`, without loading (or keeping) the rest: a view of a
   * large flat buffer reads its own range only. Kept bytes are shared (a subarray);
   * otherwise the range is read from the source file when it can be, else from a whole
   * read that is not kept.
   */
  bytesInRange(byteOffset: number, length: number): Uint8Array {
    if (byteOffset < 0 || length < 0 || byteOffset + length > this.byteLength) {
      throw new TensorError(`bytes ${byteOffset}..${byteOffset + length} lie outside storage ${this.key ?? ''} of ${this.byteLength} bytes`);
    }
    if (this.data) return this.data.subarray(byteOffset, byteOffset + length);
    // The whole of it: the usual uncached read, which also hands over (and drops) bytes read ahead.
    if (byteOffset === 0 && length === this.byteLength) return this.bytesUncached();
    if (this.ahead) return this.ahead.subarray(byteOffset, byteOffset + length);
    const src = this.sourceRegion?.source as (RangeReader & FileRegion['source']) | undefined;
    if (src && typeof src.read === 'function') return src.read(this.sourceRegion!.offset + byteOffset, length);
    return this.bytesUncached().subarray(byteOffset, byteOffset + length);
  }

  /** The bytes read ahead, or read now; checked against the storage's size. */
  private readOnce(): Uint8Array {
    const got = this.takeAhead() ?? this.load!();
    if (got.byteLength !== this.byteLength) {
      throw new TensorError(`storage ${this.key ?? ''} has ${got.byteLength} bytes, expected ${this.byteLength} (${this.numel} x ${this.dtype})`);
    }
    return got;
  }

  /**
   * The file region to copy these bytes from, while they are not in memory: a writer
   * then streams them through its own buffers (src/io/copy.ts) instead of loading them.
   */
  region(): FileRegion | undefined {
    return this.data ? undefined : this.sourceRegion;
  }

  /**
   * What a streaming writer takes: the file region of large bytes not yet loaded (copied
   * through the writer's buffers), else the bytes, read now and not kept. Small storages
   * are read: one synchronous read beats two thread-pool round trips.
   */
  streamable(): Uint8Array | FileRegion {
    return this.largeRegion() ?? this.bytesUncached();
  }

  /** region() for storages of REGION_MIN bytes or more: the ones worth streaming or reading ahead. */
  private largeRegion(): FileRegion | undefined {
    return this.byteLength >= REGION_MIN ? this.region() : undefined;
  }

  /**
   * Starts reading large bytes not yet loaded on libuv's thread pool, so that a reader
   * computing something else meanwhile finds them in memory: the read, and the page
   * faults of its fresh buffer, happen on another core. The next bytes() or
   * bytesUncached() takes them; one that comes before the read is done reads as usual
   * (the early read is dropped). A failed read is dropped too: the usual read reports it.
   */
  prefetch(): Promise<void> {
    const region = this.largeRegion();
    if (!region || this.ahead || this.aheadRead) return Promise.resolve();
    const token = {};
    this.aheadRead = token;
    const pooled = Buffer.allocUnsafe(region.length);
    const buf = new Uint8Array(pooled.buffer, pooled.byteOffset, region.length);
    const settle = (ok: boolean) => {
      if (this.aheadRead !== token) return;
      this.aheadRead = undefined;
      if (ok && !this.data) this.ahead = buf;
    };
    return region.source.readInto(buf, region.offset).then(() => settle(true), () => settle(false));
  }

  private takeAhead(): Uint8Array | undefined {
    const a = this.ahead;
    this.ahead = undefined;
    this.aheadRead = undefined; // a read still in flight is not waited for, nor used
    return a;
  }

  get loaded(): boolean {
    return this.data !== undefined;
  }
}

/** A region source that can also read synchronously (src/pth/source.ts FileSource). */
interface RangeReader {
  read(offset: number, length: number): Uint8Array;
}

export function contiguousStrides(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    stride[i] = s;
    s *= shape[i]!;
  }
  return stride;
}

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A view into a Storage, exactly as torch's _rebuild_tensor_v2 describes one. */
export class Tensor {
  requiresGrad = false;
  /** True when the file wrapped it in nn.Parameter. */
  isParameter = false;

  constructor(
    readonly storage: Storage,
    readonly shape: readonly number[],
    readonly stride: readonly number[] = contiguousStrides(shape),
    readonly offset = 0,
  ) {
    if (stride.length !== shape.length) throw new TensorError(`stride rank ${stride.length} != shape rank ${shape.length}`);
    // The furthest element must lie inside the storage: checked once, here.
    if (numelOf(shape) > 0) {
      let last = offset;
      for (let i = 0; i < shape.length; i++) last += (shape[i]! - 1) * stride[i]!;
      if (offset < 0 || last >= storage.numel) {
        throw new TensorError(`view [${shape}] stride [${stride}] offset ${offset} exceeds its storage of ${storage.numel} elements`);
      }
    }
  }

  get dtype(): DType {
    return this.storage.dtype;
  }
  get numel(): number {
    return numelOf(this.shape);
  }

  isContiguous(): boolean {
    const want = contiguousStrides(this.shape);
    return this.shape.every((d, i) => d === 1 || want[i] === this.stride[i]);
  }

  /** [first, end) storage elements this view touches; empty (at the offset) for numel 0. */
  span(): [number, number] {
    if (this.numel === 0) return [this.offset, this.offset];
    let first = this.offset;
    let last = this.offset;
    for (let i = 0; i < this.shape.length; i++) {
      const reach = (this.shape[i]! - 1) * this.stride[i]!;
      if (reach < 0) first += reach;
      else last += reach;
    }
    return [first, last + 1];
  }

  /** Bytes of the tensor in C order: a zero-copy subarray when contiguous, else a copy. */
  contiguousBytes(): Uint8Array {
    const item = dtypeInfo(this.dtype).itemSize;
    if (this.isContiguous()) {
      // A part of a large storage not loaded (a flat buffer) reads just its range, not kept;
      // otherwise the storage is loaded and kept, as before (shared storages stay shared).
      if (this.readsPart(this.offset, this.offset + this.numel)) return this.storage.bytesInRange(this.offset * item, this.numel * item);
      return this.storage.bytes().subarray(this.offset * item, (this.offset + this.numel) * item);
    }
    // A view (stride 0, say) may name far more elements than its storage holds.
    if (this.numel * item > MAX_BYTES) throw new TensorError(`view [${this.shape}] of ${this.numel * item} bytes is too large to copy into one array`);
    // Only the span the view touches is read (and not kept) when the storage is not loaded.
    const [first, end] = this.span();
    const part = this.readsPart(first, end);
    const src = part ? this.storage.bytesInRange(first * item, (end - first) * item) : this.storage.bytes();
    const base = part ? first : 0;
    const out = new Uint8Array(this.numel * item);
    let o = 0;
    if (item === 4 && src.byteOffset % 4 === 0 && out.byteOffset % 4 === 0) {
      // element-wise through 32-bit words: the common float32 case, ~10x fewer calls than set()
      const s32 = new Uint32Array(src.buffer, src.byteOffset, src.byteLength >> 2);
      const o32 = new Uint32Array(out.buffer);
      this.forEachIndex((idx) => {
        o32[o++] = s32[idx - base]!;
      });
      return out;
    }
    this.forEachIndex((idx) => {
      const at = (idx - base) * item;
      for (let b = 0; b < item; b++) out[o + b] = src[at + b]!;
      o += item;
    });
    return out;
  }

  /**
   * The C-order bytes in pieces of at most `chunkBytes` (one buffer, refilled: each piece
   * is valid until the next is asked for). A view that names far more elements than its
   * storage (stride 0) is written this way in bounded memory, with the event loop free
   * between pieces.
   */
  *contiguousChunks(chunkBytes = 64 << 20): Generator<Uint8Array> {
    const item = dtypeInfo(this.dtype).itemSize;
    const total = this.numel * item;
    if (this.isContiguous() || total <= chunkBytes) {
      yield this.contiguousBytes();
      return;
    }
    const [first, end] = this.span();
    const src = this.storage.loaded ? this.storage.bytes().subarray(first * item, end * item) : this.storage.bytesInRange(first * item, (end - first) * item);
    const per = Math.max(1, Math.floor(chunkBytes / item));
    const buf = new Uint8Array(per * item);
    const rank = this.shape.length;
    const pos = new Array<number>(rank).fill(0);
    let idx = this.offset - first;
    let left = this.numel;
    while (left > 0) {
      const n = Math.min(per, left);
      for (let k = 0, o = 0; k < n; k++, o += item) {
        const at = idx * item;
        for (let b = 0; b < item; b++) buf[o + b] = src[at + b]!;
        for (let d = rank - 1; d >= 0; d--) {
          pos[d]!++;
          idx += this.stride[d]!;
          if (pos[d]! < this.shape[d]!) break;
          idx -= pos[d]! * this.stride[d]!;
          pos[d] = 0;
        }
      }
      left -= n;
      yield n === per ? buf : buf.subarray(0, n * item);
    }
  }

  /** True when elements [from, to) are a strict part of a large storage not in memory. */
  private readsPart(from: number, to: number): boolean {
    const s = this.storage;
    return !s.loaded && s.byteLength >= REGION_MIN && (from > 0 || to < s.numel);
  }

  /** Calls f with the storage index of each element, in C order. */
  private forEachIndex(f: (storageIndex: number) => void): void {
    const n = this.numel;
    if (n === 0) return;
    const rank = this.shape.length;
    const pos = new Array<number>(rank).fill(0);
    let idx = this.offset;
    for (let k = 0; k < n; k++) {
      f(idx);
      for (let d = rank - 1; d >= 0; d--) {
        pos[d]!++;
        idx += this.stride[d]!;
        if (pos[d]! < this.shape[d]!) break;
        idx -= pos[d]! * this.stride[d]!;
        pos[d] = 0;
      }
    }
  }

  /** A typed array over the C-order bytes (Uint16Array for 16-bit floats, BigInt64Array for int64). */
  typedArray(): TypedArray {
    const info = dtypeInfo(this.dtype);
    let bytes = this.contiguousBytes();
    if (bytes.byteOffset % info.itemSize !== 0) bytes = new Uint8Array(bytes); // a copy (Buffer#slice would not copy)
    return new info.array(bytes.buffer, bytes.byteOffset, bytes.byteLength / info.itemSize);
  }

  /** Values as float32 (a view when already float32 and aligned, else a fresh array). */
  toFloat32(): Float32Array {
    const a = this.typedArray();
    if (a instanceof Float32Array) return a;
    return toFloatArray(a, this.dtype, Float32Array);
  }

  /** Values as float64 (always a fresh array). */
  toFloat64(): Float64Array {
    return toFloatArray(this.typedArray(), this.dtype, Float64Array);
  }

  /** A contiguous tensor holding `data` (the array's bytes are used, not copied). */
  static fromArray(data: TypedArray, shape: readonly number[], dtype: DType = dtypeFor(data)): Tensor {
    const info = dtypeInfo(dtype);
    if (data.BYTES_PER_ELEMENT !== info.itemSize) throw new TensorError(`array of ${data.BYTES_PER_ELEMENT}-byte items cannot hold ${dtype}`);
    if (data.length !== numelOf(shape)) throw new TensorError(`array of ${data.length} elements does not fit shape [${shape}]`);
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    return new Tensor(new Storage(dtype, data.length, bytes), [...shape]);
  }

  static scalarInt64(v: bigint): Tensor {
    return Tensor.fromArray(BigInt64Array.of(v), [], 'int64');
  }
}

function dtypeFor(a: TypedArray): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  throw new TensorError('give a dtype for a Uint16Array (float16 or bfloat16)');
}

function toFloatArray<T extends Float32Array | Float64Array>(a: TypedArray, dtype: DType, Ctor: { new (n: number): T }): T {
  const out = new Ctor(a.length);
  if (dtype === 'float16') for (let i = 0; i < a.length; i++) out[i] = halfToFloat((a as Uint16Array)[i]!);
  else if (dtype === 'bfloat16') {
    const u = new Uint32Array(1);
    const f = new Float32Array(u.buffer);
    for (let i = 0; i < a.length; i++) {
      u[0] = (a as Uint16Array)[i]! << 16;
      out[i] = f[0]!;
    }
  } else if (a instanceof BigInt64Array) for (let i = 0; i < a.length; i++) out[i] = Number(a[i]!);
  else for (let i = 0; i < a.length; i++) out[i] = a[i] as number;
  return out;
}

export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** IEEE half from a number, round to nearest even (via float32, like torch's cast chain). */
export function floatToHalf(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let h = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** bfloat16 from a number: the top half of float32, round to nearest even. */
export function floatToBfloat16(v: number): number {
  f32Scratch[0] = v;
  const x = u32Scratch[0]!;
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}
