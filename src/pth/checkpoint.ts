/** Format detection and the one entry point for reading any checkpoint. */
import type { PyValue, StateDict } from './pyobj.js';

export type CheckpointFormat = 'zip' | 'legacy' | 'safetensors';

export interface Checkpoint {
  format: CheckpointFormat;
  /** The unpickled object (safetensors: an ordered PyDict of tensors; metadata in attrs). */
  root: PyValue;
}

export interface LoadedStateDict {
  format: CheckpointFormat;
  stateDict: StateDict;
  /** Key path from the root to the state dict, e.g. ['state_dict'], or []. */
  wrapper: string[];
  /** The leading prefix that was stripped ('module.'), or null. */
  prefix: string | null;
  checkpoint: Checkpoint;
}

export async function readCheckpoint(_src: string | Uint8Array): Promise<Checkpoint> {
  throw new Error('readCheckpoint: not implemented yet');
}

/** Reads a file, finds the state dict inside wrappers, strips a leading `module.`. */
export async function loadStateDictFile(_path: string): Promise<LoadedStateDict> {
  throw new Error('loadStateDictFile: not implemented yet');
}
