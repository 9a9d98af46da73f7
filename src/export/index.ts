/**
 * Exporting a deploy network of any family: one IR (graph.ts builds it from the family's
 * description and a deploy state dict, units lowered by kind in units/), two writers (onnx.ts over a small protobuf encoder, tfjs.ts), their
 * runners, and the pipeline `repmlp export` uses.
 */
export type { Graph, IrNode, Initializer, ValueShape, Pads } from './ir.js';
export { buildGraph, buildGraphFor, deployKeyShapes, validateDeployStateDict, GraphError } from './graph.js';
export { onnxModel, onnxBytes, writeOnnx, checkOpset, OnnxExportError, DEFAULT_OPSET, MIN_OPSET, MAX_OPSET, type OnnxOptions, type OnnxWriteResult } from './onnx.js';
export { tfjsArtifacts, writeTfjs, TfjsExportError, SHARD_BYTES, type TfjsWriteResult } from './tfjs.js';
export { openOnnx, runOnnx, OnnxRuntimeError, type OnnxSession, type OnnxSessionOptions } from './onnx_runtime.js';
export { fileHandler, loadTfjsGraph, runTfjsGraph, TfjsLoadError } from './tfjs_runtime.js';
export { EXPORT_UNITS, type ExportUnit } from './units/index.js';
export { GraphBuilder } from './builder.js';
export { pairedLatency, onnxRunner, eagerRunner, type Runner } from './bench.js';
export { exportDeploy, checkExports, loadDeploy, difference, randomBatch, ExportCheckError, DEFAULT_TOLERANCE, type ExportOptions, type ExportResult, type CheckResult } from './pipeline.js';
export { Message, encodeVarint, ProtobufError } from './protobuf.js';
