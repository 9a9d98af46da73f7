import * as tf from '@tensorflow/tfjs-core';
import { fromCheckpoint, predictLogits, initBackend } from '/work/main/dist/src/model/index.js';
const [,, ckpt, arch] = process.argv;
await initBackend('wasm');
const { model } = await fromCheckpoint(ckpt, { arch });
const shape = [1, 3, 224, 224]; const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.7));
for (let i = 0; i < 2; i++) await predictLogits(model, x, shape);
const t = []; for (let i = 0; i < 5; i++) { const a = performance.now(); await predictLogits(model, x, shape); t.push(performance.now() - a); }
t.sort((a, b) => a - b); console.log('median', t[2].toFixed(1), 'ms');
const prof = await tf.profile(() => predictLogits(model, x, shape));
const by = new Map(); for (const k of prof.kernels) by.set(k.name, (by.get(k.name) || 0) + k.kernelTimeMs);
const tot = [...by.values()].reduce((a, b) => a + b, 0);
console.log('kernels total', tot.toFixed(1), 'ms');
[...by].sort((a, b) => b[1] - a[1]).slice(0, 14).forEach(([k, v]) => console.log(k.padEnd(22), v.toFixed(1)));
