/**
 * The convenient surface other parts of the toolkit use: build a model from a config,
 * initialize it, load a checkpoint (detecting architecture and mode), run logits.
 */
import * as tf from '@tensorflow/tfjs-core';
import { RepmlpError } from '../errors.js';
import { loadStateDictFile } from '../pth/index.js';
import type { LoadOptions } from '../pth/checkpoint.js';
import type { StateDict } from '../pth/pyobj.js';
import { initBackend, type BackendName } from './backend.js';
import { type RepMLPResNetConfig, type RepMLPResNetConfigInput } from './config.js';
import { ModelLoadError, resolveModel, type Mode } from './detect.js';
import { familyOfConfig } from '../family/registry.js';
import { Network } from './network.js';

// Architecture/mode resolution is TF.js-free (detect.ts) so the exporter can use it too.
export { ModelLoadError, resolveModel };
import { loadStateDict, type Module } from './module.js';
import { RepMLPResNet } from './resnet.js';
import { mulberry32 } from '../util/random.js';
import { inChunks } from './memory.js';


export interface BuildOptions {
  deploy?: boolean;
  /** Fill the parameters with seeded values (default true); false leaves them empty for a load. */
  init?: boolean;
  seed?: number;
}

/** The network of a parsed configuration of any family, in either mode. */
export function networkFor(config: unknown, deploy: boolean): Network {
  const family = familyOfConfig(config);
  const cfg = family.parseConfig(config, 'config');
  // The RepMLP-ResNet keeps its class (its name and `config` are part of the API).
  if (family.name === 'RepMLPResNet') return new RepMLPResNet(cfg as RepMLPResNetConfig, deploy);
  return new Network(family.describe(cfg, deploy ? 'deploy' : 'train'));
}

/** A network for `config` (any family; parsed and checked), in training (default) or deploy form. */
export function buildModel(config: RepMLPResNetConfig | RepMLPResNetConfigInput, opts?: BuildOptions): RepMLPResNet;
export function buildModel(config: object, opts?: BuildOptions): Network;
export function buildModel(config: object, opts: BuildOptions = {}): Network {
  const model = networkFor(config, opts.deploy ?? false);
  if (opts.init ?? true) initParams(model, { seed: opts.seed ?? 0 });
  return model;
}


export interface InitOptions {
  seed?: number;
  /**
   * false (default): PyTorch-like defaults for BN (weight 1, bias 0, mean 0, var 1) and
   * zero biases. true: BN affine/statistics and biases drawn at random too (as
   * tools/repmlp_ref.py's randomize does), so that every term matters in a comparison.
   */
  randomStats?: boolean;
}

/**
 * Weights ~ N(0, 1/fan_in); BN and biases per `randomStats`. Deterministic for a seed
 * (not the same numbers as torch's generator).
 */
export function initParams(model: Module, opts: InitOptions = {}): void {
  const u = mulberry32(opts.seed ?? 0);
  const normal = () => Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u());
  const fill = (n: number, f: () => number) => Float32Array.from({ length: n }, f);
  const rs = opts.randomStats ?? false;
  for (const [name, slot] of model.namedSlots()) {
    const n = slot.shape.reduce((a, b) => a * b, 1);
    const leaf = name.slice(name.lastIndexOf('.') + 1);
    const isBn = /(^|\.)(bn|fc3_bn)\.[a-z_]+$/.test(name);
    if (slot.entry.dtype === 'int64') slot.count = 0n;
    else if (isBn && leaf === 'weight') slot.data = rs ? fill(n, () => 0.5 + u()) : new Float32Array(n).fill(1);
    else if (isBn && leaf === 'running_var') slot.data = rs ? fill(n, () => 0.5 + u()) : new Float32Array(n).fill(1);
    else if (leaf === 'weight') {
      const std = Math.sqrt(1 / (n / slot.shape[0]!));
      slot.data = fill(n, () => normal() * std);
    } else slot.data = rs ? fill(n, () => normal() * 0.1) : new Float32Array(n);
  }
  model.invalidate();
}

export interface CheckpointModel {
  model: Network;
  /** Preset name, or null for a custom configuration. */
  arch: string | null;
  /** The configuration (of the family `family` names). */
  config: any;
  family: string;
  mode: Mode;
  format: string;
  prefix: string | null;
  wrapper: string[];
}

/**
 * Loads a .pth / .safetensors checkpoint: architecture from `arch` (preset or JSON path)
 * or detected from keys and shapes, mode (training / deploy) from the keys, then a strict
 * load whose error lists every missing / unexpected / wrong-shape key.
 */
export async function fromCheckpoint(path: string, opts: { arch?: string } & LoadOptions = {}): Promise<CheckpointModel> {
  const loaded = await loadStateDictFile(path, opts);
  const sd = loaded.stateDict;
  const { arch, config, mode, resolved } = resolveModel(sd, path, opts.arch);
  const model = networkFor(config, mode === 'deploy');
  loadStateDict(model, sd, { where: path });
  return { model, arch, config, family: resolved.family.name, mode, format: loaded.format, prefix: loaded.prefix, wrapper: loaded.wrapper };
}


/**
 * Runs logits for a float32 NCHW batch; the result is copied out and TF.js memory freed.
 * Batches are split to fit TF.js memory (memory.ts), so any batch size works.
 */
export async function predictLogits(model: Network, input: Float32Array, shape: readonly [number, number, number, number]): Promise<Float32Array> {
  return inChunks(model, input, shape, (x, s) => forwardOnce(model, x, s));
}

async function forwardOnce(model: Network, input: Float32Array, shape: readonly [number, number, number, number]): Promise<Float32Array> {
  const x = tf.tensor4d(input, [...shape] as [number, number, number, number]);
  try {
    const y = model.forward(x);
    try {
      return (await y.data()) as Float32Array;
    } finally {
      y.dispose();
    }
  } finally {
    x.dispose();
  }
}

export { initBackend, type BackendName };
