/** Packages with no place in the browser build (onnxruntime-node, pngjs, cli-progress). */
function unavailable(): never {
  throw new Error('not available in the browser build of repmlp');
}
export const InferenceSession = { create: unavailable };
export const Tensor = unavailable;
export const PNG = { sync: { read: unavailable } };
export default { InferenceSession, Tensor, PNG };
