/**
 * Every error the toolkit raises on bad input derives from RepmlpError, so the CLI can
 * print it as one line and tests can assert on the type. Each format module defines its
 * own subclass (ZipError, PickleError, ...), Netron-style.
 */
export class RepmlpError extends Error {
  override name = 'RepmlpError';
  constructor(message: string, options?: { cause?: unknown }) {
    // Messages quote names read from files (zip records, pickle strings): control
    // characters are escaped so that a message is always one printable line.
    super(oneLine(message), options);
  }
}

// C0, DEL and C1 (U+009B is a CSI to many terminals).
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Escapes control characters (a newline becomes \n): messages stay one line. */
export function oneLine(s: string): string {
  return s.replace(CONTROL, (c) => (c === '\n' ? '\\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
}

/** A user-facing usage problem (bad flag, missing argument, unknown preset). */
export class UsageError extends RepmlpError {
  override name = 'UsageError';
}
