/**
 * The one dtype table. Every other mapping (torch storage class names, safetensors
 * names, ONNX and TF enums, typed array constructors) is derived from it.
 */
export type DType =
  | 'float32' | 'float64' | 'float16' | 'bfloat16'
  | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export type TypedArray =
  | Float32Array | Float64Array | Int32Array | Int16Array | Int8Array | Uint8Array
  | Uint16Array | BigInt64Array;

type TypedArrayCtor = { new (buf: ArrayBufferLike, off: number, len: number): TypedArray; BYTES_PER_ELEMENT: number };

export interface DTypeInfo {
  readonly name: DType;
  readonly itemSize: number;
  /** Legacy typed storage class, as in `torch.FloatStorage`. */
  readonly storage: string;
  /** safetensors header dtype. */
  readonly safetensors: string;
  /** onnx.TensorProto.DataType enum value. */
  readonly onnx: number;
  /** TF.js dtype name when TF.js can hold it, else null. */
  readonly tfjs: 'float32' | 'int32' | 'bool' | null;
  /** Typed array that views the raw bytes (Uint16Array for 16-bit floats: bytes kept). */
  readonly array: TypedArrayCtor;
  readonly isFloat: boolean;
}

const table: DTypeInfo[] = [
  { name: 'float32', itemSize: 4, storage: 'FloatStorage', safetensors: 'F32', onnx: 1, tfjs: 'float32', array: Float32Array, isFloat: true },
  { name: 'float64', itemSize: 8, storage: 'DoubleStorage', safetensors: 'F64', onnx: 11, tfjs: null, array: Float64Array, isFloat: true },
  { name: 'float16', itemSize: 2, storage: 'HalfStorage', safetensors: 'F16', onnx: 10, tfjs: null, array: Uint16Array, isFloat: true },
  { name: 'bfloat16', itemSize: 2, storage: 'BFloat16Storage', safetensors: 'BF16', onnx: 16, tfjs: null, array: Uint16Array, isFloat: true },
  { name: 'int64', itemSize: 8, storage: 'LongStorage', safetensors: 'I64', onnx: 7, tfjs: null, array: BigInt64Array as unknown as TypedArrayCtor, isFloat: false },
  { name: 'int32', itemSize: 4, storage: 'IntStorage', safetensors: 'I32', onnx: 6, tfjs: 'int32', array: Int32Array, isFloat: false },
  { name: 'int16', itemSize: 2, storage: 'ShortStorage', safetensors: 'I16', onnx: 5, tfjs: null, array: Int16Array, isFloat: false },
  { name: 'int8', itemSize: 1, storage: 'CharStorage', safetensors: 'I8', onnx: 3, tfjs: null, array: Int8Array, isFloat: false },
  { name: 'uint8', itemSize: 1, storage: 'ByteStorage', safetensors: 'U8', onnx: 2, tfjs: null, array: Uint8Array, isFloat: false },
  { name: 'bool', itemSize: 1, storage: 'BoolStorage', safetensors: 'BOOL', onnx: 9, tfjs: 'bool', array: Uint8Array, isFloat: false },
];

export const DTYPES: ReadonlyMap<DType, DTypeInfo> = new Map(table.map((d) => [d.name, d]));
export const DTYPE_BY_STORAGE: ReadonlyMap<string, DTypeInfo> = new Map(table.map((d) => [d.storage, d]));
export const DTYPE_BY_SAFETENSORS: ReadonlyMap<string, DTypeInfo> = new Map(table.map((d) => [d.safetensors, d]));

export function dtypeInfo(name: DType): DTypeInfo {
  const info = DTYPES.get(name);
  if (!info) throw new Error(`unknown dtype ${name}`);
  return info;
}

export function isDType(name: string): name is DType {
  return DTYPES.has(name as DType);
}
