/**
 * (No ETA in the bar: with bursty disk writes cli-progress often shows it as 'NF'.)
 * Progress bars on a terminal only: when stderr is not a TTY (pipes, CI, --json) this
 * prints nothing at all.
 */
import { createRequire } from 'node:module';
import type * as CliProgress from 'cli-progress';

// Required when a bar is drawn: most runs (pipes, CI, --json) never draw one, and the
// module costs ~15 ms to load on every command.
const requireHere = createRequire(import.meta.url);

export interface Progress {
  /** Sets the amount done so far (same unit as total). */
  update(done: number): void;
  /** Adds to the amount done. */
  tick(delta?: number): void;
  stop(): void;
}

const silent: Progress = { update() {}, tick() {}, stop() {} };
let quiet = false;

/** --json and scripts: no bars even on a terminal. */
export function setQuiet(q: boolean): void {
  quiet = q;
}

export function progress(label: string, total: number, unit = ''): Progress {
  if (quiet || !process.stderr.isTTY || total <= 0) return silent;
  const cliProgress = requireHere('cli-progress') as typeof CliProgress;
  const bar = new cliProgress.SingleBar(
    { format: `${label} [{bar}] {percentage}% {value}/{total}${unit ? ' ' + unit : ''}`, stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(total, 0);
  let done = 0;
  return {
    update(d) { done = d; bar.update(d); },
    tick(delta = 1) { done += delta; bar.update(done); },
    stop() { bar.stop(); },
  };
}
