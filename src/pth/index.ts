/**
 * Checkpoint I/O: the public surface of src/pth. Formats: torch zip (>= 1.6), torch
 * legacy (< 1.6), safetensors.
 */
export { readCheckpoint, loadStateDictFile, type Checkpoint, type CheckpointFormat, type LoadedStateDict } from './checkpoint.js';
export { writeCheckpoint, type WriteOptions } from './write.js';
export { findStateDict, toStateDict, stateDictToPy, stripPrefix, addPrefix, detectPrefix } from './statedict.js';
export { PyDict, PyTuple, PyOther, type PyValue, type PyKey, type StateDict } from './pyobj.js';
