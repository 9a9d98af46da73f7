/**
 * Scratch folders for work files nobody asked to keep (the demo's exports, the bench's
 * checkpoints): `<tmp>/<prefix>-PID-XXXXXX`, removed when the work ends and at process
 * exit. A run killed outright (SIGKILL, the OOM killer) cannot remove its own, so each
 * new one first removes those whose process is gone.
 */
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { pidAlive } from './atomic.js';

const live = new Set<string>();
let hooked = false;

function removeLive(): void {
  for (const d of live) fs.rmSync(d, { recursive: true, force: true });
  live.clear();
}


/** Removes `<root>/<prefix>-PID-*` folders of dead processes; returns their names. */
export function sweepScratch(prefix: string, root = tmpdir()): string[] {
  const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d+)-[A-Za-z0-9]{6}$`);
  const gone: string[] = [];
  let names: string[] = [];
  try {
    names = fs.readdirSync(root);
  } catch {
    return gone;
  }
  for (const n of names) {
    const m = re.exec(n);
    if (m && !pidAlive(Number(m[1]))) {
      fs.rmSync(path.join(root, n), { recursive: true, force: true });
      gone.push(n);
    }
  }
  return gone;
}

/** A fresh scratch folder and the function that removes it. */
export function scratchDir(prefix: string, root = tmpdir()): { dir: string; remove: () => void } {
  sweepScratch(prefix, root);
  const dir = fs.mkdtempSync(path.join(root, `${prefix}-${process.pid}-`));
  live.add(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeLive);
  }
  return {
    dir,
    remove: () => {
      fs.rmSync(dir, { recursive: true, force: true });
      live.delete(dir);
    },
  };
}

/** Total bytes of the files under `dir` (0 when it does not exist). */
export function folderBytes(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += folderBytes(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}
