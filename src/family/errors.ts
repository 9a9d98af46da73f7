import { RepmlpError } from '../errors.js';

/** Bad or inconsistent input to the re-parameterization, or a pattern no family claims; the message names the key. */
export class ReparamError extends RepmlpError {
  override name = 'ReparamError';
}

/** An architecture that cannot be resolved (unknown preset, unrecognized state dict). */
export class ArchError extends RepmlpError {
  override name = 'ArchError';
}

/** A bad architecture configuration (preset name, config JSON); the message names the field. */
export class ConfigError extends RepmlpError {
  override name = 'ConfigError';
}
