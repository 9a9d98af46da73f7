import { fromCheckpoint, predictLogits, initBackend } from '/work/main/dist/src/model/index.js';
await initBackend('wasm');
const { model } = await fromCheckpoint(process.argv[2], { arch: 'RepMLP-Res50-light-224' });
const shape = [1, 3, 224, 224]; const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i * 0.7));
for (let i = 0; i < 2; i++) await predictLogits(model, x, shape);
const med = (v) => [...v].sort((a, b) => a - b)[v.length >> 1].toFixed(1);
for (let round = 0; round < 3; round++) for (const gap of [0, 25]) {
  const t = []; for (let i = 0; i < 8; i++) { if (gap) await new Promise((r) => setTimeout(r, gap)); const a = performance.now(); await predictLogits(model, x, shape); t.push(performance.now() - a); }
  console.log(`gap ${gap}: median ${med(t)} ms`);
}
