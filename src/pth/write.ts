/** Writing checkpoints: torch's zip format (default) or safetensors, atomically. */
import type { PyValue } from './pyobj.js';

export interface WriteOptions {
  format?: 'zip' | 'safetensors';
}

export async function writeCheckpoint(_path: string, _obj: PyValue, _opts: WriteOptions = {}): Promise<void> {
  throw new Error('writeCheckpoint: not implemented yet');
}
