/**
 * Checkpoint I/O: the public surface of src/pth. Formats: torch zip (>= 1.6), torch
 * legacy (< 1.6), safetensors.
 */
export { readCheckpoint, loadStateDictFile, type Checkpoint, type CheckpointFormat, type LoadedStateDict, type ReadOptions, type LoadOptions as CheckpointLoadOptions } from './checkpoint.js';
export { writeCheckpoint, type WriteOptions } from './write.js';
export { findStateDict, listStateDicts, toStateDict, stateDictToPy, stripPrefix, addPrefix, detectPrefix, knownPrefixes, stripKnownPrefixes, WRAPPER_PREFIXES, type StateDictCandidate } from './statedict.js';
export { PyDict, PyTuple, PyOther, PyObject, unwrapValue, type PyValue, type PyKey, type StateDict } from './pyobj.js';
