/**
 * Every error the toolkit raises on bad input derives from RepmlpError, so the CLI can
 * print it as one line and tests can assert on the type. Each format module defines its
 * own subclass (ZipError, PickleError, ...), Netron-style.
 */
export class RepmlpError extends Error {
  override name = 'RepmlpError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A user-facing usage problem (bad flag, missing argument, unknown preset). */
export class UsageError extends RepmlpError {
  override name = 'UsageError';
}
