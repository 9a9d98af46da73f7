/**
 * The RepMLP-ResNet's configuration lives with its family description
 * (family/repmlp_resnet/config.ts); re-exported here for the model's users.
 * `resolveArch` here is the RepMLP-ResNet-typed view of the registry's (any family).
 */
import { resolveArch as resolveAnyArch } from '../family/registry.js';
import { ConfigError } from '../family/errors.js';
import type { RepMLPResNetConfig } from '../family/repmlp_resnet/config.js';

export * from '../family/repmlp_resnet/config.js';

/** A RepMLP-ResNet preset name or config JSON (an ARCH of another family is refused here). */
export function resolveArch(arch: string): { name: string | null; config: RepMLPResNetConfig } {
  const r = resolveAnyArch(arch);
  if (r.family.name !== 'RepMLPResNet') throw new ConfigError(`--arch ${arch}: a ${r.family.name}, not a RepMLP-ResNet`);
  return { name: r.name, config: r.config as RepMLPResNetConfig };
}
