/**
 * The families' networks (family/) in TensorFlow.js with PyTorch's parameter names. detect.ts, layout.ts
 * and statedict.ts are TF.js-free and can be imported directly where start-up matters.
 */
export { BackendError, BACKENDS, initBackend, isBackendName, tf, type BackendName } from './backend.js';
export { buildModel, networkFor, fromCheckpoint, initParams, ModelLoadError, predictLogits, resolveModel, type BuildOptions, type CheckpointModel, type InitOptions } from './api.js';
export { ConvBN, ConvBNReLU } from './convbn.js';
export { detectArch, detectMode, inferConfig, type Mode } from './detect.js';
export { blockChildren, bnEntries, convBNEntries, networkEntries, repmlpEntries, type Entry } from './layout.js';
export { BN_EPS, Container, loadStateDict, Module, Slot, type LoadOptions } from './module.js';
export { RepMLP } from './repmlp.js';
export { RepMLPResNet, ShapeError } from './resnet.js';
export { Network } from './network.js';
export { MODEL_UNITS, type ModelUnit, type UnitModule } from './units/index.js';
export { assertLoadable, compareStateDict, formatReport, StateDictError, type SizeMismatch, type StateDictReport } from './statedict.js';
export * from './config.js';
