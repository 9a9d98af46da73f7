/**
 * Re-parameterization (RepMLP, arXiv 2105.01883, Sec. 3.3): pure per-step math and the
 * state-dict converter built on it. See shared/spec/architecture.md.
 */
export { fuseBn, fuseBnAs, scaleRows, bnScaleShift, type BatchNorm } from './fuse_bn.js';
export { padKernel } from './pad_kernel.js';
export { convToFc, mergeFc3, bandTaps, type FcGeometry, type LocalPerceptron } from './conv_to_fc.js';
export { foldAvgBn } from './fold_avg_bn.js';
export { ReparamError } from './numeric.js';
export { findRepmlpBlocks, findConvBnPairs, blockName, type RepmlpBlock, type ConvBnPair, type BnKeys } from './find.js';
export { inferGeometry, type BlockHint, type BlockGeometry } from './geometry.js';
export {
  convertStateDict, convertRepmlp, convertConvBn, equivalentFc1Fc3, claimUnits, BN_EPS,
  type ConvertOptions, type ConvertResult, type ConvertedBlock, type RepmlpDeploy, type ConvertUnit, type Job,
} from './convert.js';
export { archHints, checkLayout, foldingUnits, orderLikeDeploy } from './arch.js';
export { REPARAM_UNITS, type ReparamUnit, type ReparamContext } from './units/index.js';
export { convertTrainingStateDict, type PipelineOptions, type PipelineResult } from './pipeline.js';
