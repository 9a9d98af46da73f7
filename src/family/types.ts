/**
 * The one description of a network family, as data (docs/families.md). A family says
 * what its networks are (module paths as PyTorch names them, the unit each module is,
 * its parameters) and how data flows between them; the layers above derive everything
 * from it: the state-dict layout (family/layout.ts), the TF.js modules (model/units/),
 * the export IR (export/units/), architecture detection (family/registry.ts) and the
 * re-parameterization (reparam/units/). Nothing here imports TensorFlow.js, the model,
 * the converter or the exporter: only pth types and util.
 */
import type { StateDict } from '../pth/pyobj.js';

export type Mode = 'train' | 'deploy';

/** One state-dict entry: name, shape and dtype, as PyTorch registers it. */
export interface Entry {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int64';
}

// ---------------------------------------------------------------------------------------
// Units: the modules a description is made of. A unit is a PyTorch module at a path whose
// parameters every layer knows how to handle (one file per kind per layer, found through a
// Map keyed by `kind`). Adding a kind = one params interface here (a line in UnitKinds),
// its layout in family/kinds/, and an implementation per layer that meets it.
// ---------------------------------------------------------------------------------------

/** A Conv2d's sizes: weight `[out, in/groups, k, k]`, padding `pad` on every side. */
export interface ConvGeometry {
  in: number;
  out: number;
  k: number;
  stride: number;
  pad: number;
  groups: number;
}

/**
 * Conv2d (no bias) + BatchNorm2d [+ ReLU]: the 2021 ConvBN / ConvBNReLU (`fold: true`,
 * deploy = one biased `conv`), or a conv+BN pair the family's deploy model keeps as it
 * is (`fold: false`, e.g. RepMLPNet's embeddings and FFN: deploy keys = training keys).
 * Keys `conv.weight [out, in/groups, k, k]`, `bn.*`.
 */
export interface ConvBNParams extends ConvGeometry {
  /** The module's own ReLU (ConvBNReLU's nonlinearity). */
  relu: boolean;
  fold: boolean;
}

/** BatchNorm2d (or 1d) over C channels, kept in deploy: weight, bias, running_*, num_batches_tracked. */
export interface BNParams {
  C: number;
}

/** nn.Linear on a vector: weight [out, in], bias [out] when `bias`. */
export interface LinearParams {
  in: number;
  out: number;
  bias: boolean;
}

/**
 * The 2021 RepMLP (architecture.md): global perceptron (when H != h or W != w), fc3 +
 * fc3_bn, local perceptron repconv{k}. Deploy: fc1_fc2.*, fc3.weight, fc3.bias.
 */
export interface RepMLP2021Params {
  C: number;
  O: number;
  H: number;
  W: number;
  h: number;
  w: number;
  reparamConvK: number[];
  fc1fc2Reduction: number;
  fc3Groups: number;
}

/**
 * Every unit kind and its parameters. A new kind adds one line here (its params type may
 * live in its own file) — e.g. RepMLPNet's block: `repmlpnet_block: RepMLPNetBlockParams`.
 */
export interface UnitKinds {
  convbn: ConvBNParams;
  bn: BNParams;
  linear: LinearParams;
  repmlp2021: RepMLP2021Params;
  repmlpnet_block: import('./repmlpnet/config.js').RepMLPNetBlockParams;
}

export type UnitKind = keyof UnitKinds;

/** A unit: its kind, its PyTorch module path (`stage1.0.conv1`), and its parameters. */
export type Unit<K extends UnitKind = UnitKind> = {
  [k in K]: { kind: k; path: string; params: UnitKinds[k] };
}[K];

// ---------------------------------------------------------------------------------------
// Forward dataflow: named values, PyTorch semantics (NCHW maps, vectors in PyTorch order).
// `input` is the network input, `output` the logits. Structural ops have no parameters.
// ---------------------------------------------------------------------------------------

export type Op =
  /** Runs the unit at `unit` (a path in `units`) on `input`. */
  | { op: 'unit'; unit: string; input: string; output: string }
  | { op: 'add'; inputs: readonly [string, string]; output: string }
  /** map * vector (per image and channel, broadcast over H, W), or same-shape product. */
  | { op: 'mul'; inputs: readonly [string, string]; output: string }
  | { op: 'relu' | 'gelu' | 'sigmoid'; input: string; output: string }
  /** MaxPool2d, padding by -inf. */
  | { op: 'maxpool'; input: string; output: string; kernel: number; stride: number; pad: number }
  /** Mean over H and W: map [C, H, W] -> vector [C]. */
  | { op: 'gap'; input: string; output: string };

export type OpName = Op['op'];

/** What one network (one configuration, one mode) is. */
export interface NetworkDesc {
  family: string;
  /** PyTorch's class name, for load errors ("Error(s) in loading state_dict for RepMLPResNet"). */
  typeName: string;
  mode: Mode;
  /** Input map [C, H, W] the configuration is built for. */
  input: { C: number; H: number; W: number };
  /**
   * Other input sizes the network accepts: any multiple of [mh, mw] (no unit fixes the
   * size); absent when only `input`'s H x W works (a partition or fc fixes it).
   */
  sizes?: { multipleH: number; multipleW: number };
  numClasses: number;
  /** Units in PyTorch's registration order: their entries, concatenated, are the state dict. */
  units: Unit[];
  forward: Op[];
  /** Value names of the input and the output. */
  inputName: string;
  outputName: string;
}

/** Image preprocessing of the family's test script. */
export interface Preprocessing {
  /** Resize the shorter side to this (bilinear), then centre crop to the input size. */
  resizeShorter: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
}

/** A resolved architecture: which family, the preset name (null: custom) and its configuration. */
export interface Arch<C = unknown> {
  family: NetworkFamily<C>;
  name: string | null;
  config: C;
}

/**
 * A family of complete networks: its presets (ARCH names), its configuration schema, the
 * description of a configuration in either mode, and how to tell configurations and
 * modes from a state dict's keys and shapes. TF.js-free.
 */
export interface NetworkFamily<C = unknown> {
  kind: 'network';
  /** e.g. 'RepMLPResNet' (the value of a config JSON's "family" field). */
  name: string;
  /** Preset names, in the order help texts list them. */
  presets: readonly string[];
  presetConfig(name: string): C;
  /** Validates a user's configuration (JSON object, `family` field already removed); errors name the field. */
  parseConfig(raw: unknown, where: string): C;
  /** True when `config` is one of this family's parsed configurations. */
  owns(config: unknown): config is C;
  describe(config: C, mode: Mode): NetworkDesc;
  /** 'train' / 'deploy' from the keys, null when the keys look like neither. */
  detectMode(sd: StateDict): Mode | null;
  /** A configuration inferred from shapes (checked by regenerating its layout), or null. */
  infer(sd: StateDict, mode: Mode | null): C | null;
  preprocessing(config: C): Preprocessing;
}

/** One unit a building-blocks family claims in a state dict of an unknown model. */
export interface ClaimedUnit {
  kind: UnitKind;
  /** Module path ('' for a bare unit at the root). */
  path: string;
  /** Every key of the unit, in state-dict order. */
  keys: string[];
}

/** What a building-blocks family found, or why it refuses the state dict. */
export interface Claim {
  units: ClaimedUnit[];
  /** Patterns it knows to be re-parameterizable blocks of something else: never fused by guess. */
  refused: { path: string; pattern: string; keys: string[] }[];
}

/**
 * A family of building blocks that users put into their own models (the 2021 release's
 * RepMLP and ConvBN units, converted by `repmlp_model_convert`): no network description,
 * only the units it recognizes by their keys. Everything it does not claim is kept as is.
 */
export interface BlockFamily {
  kind: 'blocks';
  name: string;
  claim(sd: StateDict): Claim;
}

export type Family = NetworkFamily<any> | BlockFamily;
