/** The browser build's `node:fs/promises` (see vfs.ts). */
import { promises } from './vfs.js';

export const { stat, access, open, rename, rm, unlink, mkdir, readFile, writeFile, readdir } = promises;
export default promises;
