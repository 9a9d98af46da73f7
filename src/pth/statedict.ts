/** State-dict utilities: find it inside wrappers, convert, rewrite leading prefixes. */
import { PyDict, type PyValue, type StateDict } from './pyobj.js';

export function findStateDict(_root: PyValue): { path: string[]; dict: PyDict } {
  throw new Error('findStateDict: not implemented yet');
}
export function toStateDict(_dict: PyDict): StateDict {
  throw new Error('toStateDict: not implemented yet');
}
/** An OrderedDict holding the tensors in order, for writeCheckpoint. */
export function stateDictToPy(sd: StateDict): PyDict {
  return new PyDict(new Map(sd), true);
}
export function detectPrefix(_dict: PyDict): string | null {
  throw new Error('detectPrefix: not implemented yet');
}
export function stripPrefix(_dict: PyDict, _prefix = 'module.'): PyDict {
  throw new Error('stripPrefix: not implemented yet');
}
export function addPrefix(_dict: PyDict, _prefix: string): PyDict {
  throw new Error('addPrefix: not implemented yet');
}
