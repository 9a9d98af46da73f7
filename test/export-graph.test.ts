/**
 * The deploy-graph IR and the protobuf encoder, without any runtime: state-dict
 * validation errors (exact messages), the IR's shape bookkeeping, and varint encoding
 * checked against an independent decoder (property test).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { parseConfig, PRESETS } from '../src/model/config.js';
import { Tensor } from '../src/tensor.js';
import type { StateDict } from '../src/pth/index.js';
import { buildGraph, deployKeyShapes, GraphError } from '../src/export/graph.js';
import { consumers } from '../src/export/ir.js';
import { encodeVarint, Message, ProtobufError } from '../src/export/protobuf.js';

const tiny = parseConfig({
  num_blocks: [1, 2, 2, 1], num_classes: 5, block_type: 'bottleneck', img_H: 64, img_W: 128, h: 4, w: 8,
  reparam_conv_k: [1, 3], fc1_fc2_reduction: 1, fc3_groups: 2, widths: [16, 32, 64, 128], stem_width: 8,
});

function zeros(cfg = tiny): StateDict {
  const sd: StateDict = new Map();
  for (const [k, shape] of deployKeyShapes(cfg)) sd.set(k, Tensor.fromArray(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape));
  return sd;
}

test('deployKeyShapes: element counts equal the spec table for both presets', () => {
  const count = (name: string) => [...deployKeyShapes(parseConfig(PRESETS[name]!)).values()].reduce((s, sh) => s + sh.reduce((a, b) => a * b, 1), 0);
  assert.equal(count('RepMLP-Res50-light-224'), 86_142_440);
  assert.equal(count('RepMLP-Res50-bottleneck-224'), 40_871_528);
});

test('validation names the missing, misshapen or unexpected key', () => {
  let sd = zeros();
  sd.delete('stage2.1.btnk_repmlp.fc3.bias');
  assert.throws(() => buildGraph(tiny, sd), new GraphError("deploy state dict: missing key 'stage2.1.btnk_repmlp.fc3.bias' [128]"));
  sd = zeros();
  sd.set('linear.weight', Tensor.fromArray(new Float32Array(6 * 128), [6, 128]));
  assert.throws(() => buildGraph(tiny, sd), new GraphError("deploy state dict: key 'linear.weight' has shape [6,128], expected [5,128] for this architecture"));
  sd = zeros();
  sd.set('stage0.0.bn.running_mean', Tensor.fromArray(new Float32Array(8), [8]));
  assert.throws(() => buildGraph(tiny, sd), new GraphError("deploy state dict: unexpected key 'stage0.0.bn.running_mean' (a training-time key: convert the checkpoint first)"));
  sd = zeros();
  sd.set('linear.bias', Tensor.fromArray(new Int32Array(5), [5]));
  assert.throws(() => buildGraph(tiny, sd), /key 'linear.bias' has dtype int32, expected a float type/);
});

test('IR: shapes follow the network; RepMLPs with one partition have no global perceptron', () => {
  const g = buildGraph(tiny, zeros());
  assert.deepEqual(g.values.get('input'), { kind: 'map', C: 3, H: 64, W: 128 });
  assert.deepEqual(g.values.get('stage0.1'), { kind: 'map', C: 8, H: 16, W: 32 });
  assert.deepEqual(g.values.get('logits'), { kind: 'vector', F: 5 });
  const fcs = g.nodes.filter((n) => n.op === 'partitionfc');
  // stage2: 8x16 maps in 4x8 partitions (2x2 of them); stage3: 4x8, a single partition.
  assert.deepEqual(fcs.map((n) => [n.name, n.addend !== null]), [
    ['stage2.1.btnk_repmlp.fc3', true], ['stage3.1.btnk_repmlp.fc3', false],
  ]);
  // Every value is produced before it is read, and every initializer is used.
  const seen = new Set(['input']);
  for (const n of g.nodes) {
    for (const v of n.op === 'add' ? n.inputs : n.op === 'partitionfc' && n.addend ? [n.input, n.addend] : [n.input]) assert.ok(seen.has(v), `${n.name} reads ${v} early`);
    seen.add(n.output);
  }
  assert.equal(g.initializers.size, deployKeyShapes(tiny).size);
  assert.equal(consumers(g).get('logits'), undefined);
});

/** Independent decoder for the property test. */
function decodeVarint(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = 0; i < b.length; i++) {
    v |= BigInt(b[i]! & 127) << BigInt(7 * i);
    if (!(b[i]! & 128)) {
      assert.equal(i, b.length - 1, 'terminated early');
      return v;
    }
  }
  throw new Error('unterminated');
}

test('protobuf: varints round-trip for all int64 values (negative as two\'s complement, 10 bytes)', () => {
  fc.assert(fc.property(fc.bigInt(-(1n << 63n), (1n << 64n) - 1n), (v) => {
    const enc = encodeVarint(v);
    assert.equal(decodeVarint(enc), BigInt.asUintN(64, v));
    if (v < 0n) assert.equal(enc.length, 10);
  }));
  fc.assert(fc.property(fc.maxSafeNat(), (v) => assert.equal(decodeVarint(encodeVarint(v)), BigInt(v))));
  assert.throws(() => encodeVarint(1n << 64n), ProtobufError);
  assert.throws(() => encodeVarint(0.5), ProtobufError);
});

test('protobuf: messages nest with length prefixes; payloads are referenced, not copied', () => {
  const payload = new Uint8Array(300).fill(7);
  const inner = new Message().varint(1, 150).string(2, 'hi');
  const m = new Message().message(3, inner).bytes(4, payload).float(5, 1.5).varints(6, [1, -1]);
  const b = m.toBytes();
  // field 3 (LEN): tag 0x1a, length 7: [08 96 01] [12 02 'h' 'i']
  assert.deepEqual([...b.subarray(0, 9)], [0x1a, 7, 0x08, 0x96, 0x01, 0x12, 0x02, 0x68, 0x69]);
  // field 4 (LEN) with a 2-byte length 300 = ac 02
  assert.deepEqual([...b.subarray(9, 12)], [0x22, 0xac, 0x02]);
  assert.ok(m.chunks.includes(payload));
  // float 1.5 little-endian after tag 0x2d
  assert.deepEqual([...b.subarray(312, 317)], [0x2d, 0, 0, 0xc0, 0x3f]);
  assert.deepEqual([...b.subarray(317, 320)], [0x30, 1, 0x30]);
  assert.equal(b.length, 320 + 10);
  assert.throws(() => new Message().varint(0, 1), /bad field number 0/);
});
