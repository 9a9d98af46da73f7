#!/usr/bin/env node
/**
 * Writes the hostile corpus (tools/hostile/corpus.mjs) into OUTDIR: one file per case,
 * `NNN-name.ext`, and `index.json` ([{file, name, source, bytes}]). Deterministic.
 *
 *   node tools/hostile/generate.mjs OUTDIR [--big]
 *
 * --big adds the multi-hundred-MB cases (also REPMLP_HOSTILE_BIG=1).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { cases } from './corpus.mjs';

const args = process.argv.slice(2);
const out = args.find((a) => !a.startsWith('--'));
if (!out) {
  process.stderr.write('usage: node tools/hostile/generate.mjs OUTDIR [--big]\n');
  process.exit(2);
}
const big = args.includes('--big') || process.env.REPMLP_HOSTILE_BIG === '1';
mkdirSync(out, { recursive: true });
const index = [];
cases({ big }).forEach((c, i) => {
  const file = `${String(i).padStart(3, '0')}-${c.name.replace(/[^\w.^-]/g, '_')}.${c.ext}`;
  writeFileSync(path.join(out, file), c.bytes);
  index.push({ file, name: c.name, source: c.source, bytes: c.bytes.length });
});
writeFileSync(path.join(out, 'index.json'), JSON.stringify(index, null, 1) + '\n');
process.stdout.write(`${index.length} cases, ${(index.reduce((s, c) => s + c.bytes, 0) / 1e6).toFixed(1)} MB in ${out}\n`);
