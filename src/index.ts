/**
 * repmlp: RepMLP PyTorch checkpoints in Node.js. The chain, one module each:
 * read (pth) -> model (TF.js) -> reparam (exact conversion) -> export (ONNX, TF.js graph).
 * Subpaths (`repmlp/pth`, `repmlp/reparam`, ...) load only their part: `repmlp/pth` and
 * `repmlp/reparam` never start TensorFlow.js.
 */
export { RepmlpError, UsageError } from './errors.js';
export { DTYPES, dtypeInfo, type DType, type DTypeInfo } from './dtype.js';
export { Storage, Tensor, TensorError } from './tensor.js';
export * from './pth/index.js';
export * from './model/index.js';
export * from './reparam/index.js';
// Both model and reparam define BatchNorm's eps (1e-5); one name at the top level.
export { BN_EPS } from './model/index.js';
export * from './export/index.js';
export { readNpy, writeNpy } from './io/npy.js';
export { openClassifier, type Classifier } from './app/classifier.js';
export { predictFiles, evaluateFolder } from './app/classify.js';
