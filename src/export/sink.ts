/**
 * Coalesces many small chunks (protobuf tags, lengths) into large writes, and passes
 * big payloads straight through, so writing a 300 MB model is a few hundred syscalls.
 */
import type { FileHandle } from 'node:fs/promises';
import { writeAll } from '../io/atomic.js';

const BUFFER = 1 << 20;

export class ChunkSink {
  private buf = new Uint8Array(BUFFER);
  private used = 0;
  private total = 0;

  constructor(private readonly fh: FileHandle, private readonly onBytes?: (written: number) => void) {}

  async write(c: Uint8Array): Promise<void> {
    if (c.byteLength >= BUFFER / 4) {
      await this.flush();
      await writeAll(this.fh, c);
      this.advance(c.byteLength);
      return;
    }
    if (this.used + c.byteLength > BUFFER) await this.flush();
    this.buf.set(c, this.used);
    this.used += c.byteLength;
  }

  async flush(): Promise<void> {
    if (!this.used) return;
    await writeAll(this.fh, this.buf.subarray(0, this.used));
    this.advance(this.used);
    // writeAll has finished with the buffer, so it can be reused.
    this.used = 0;
  }

  private advance(n: number): void {
    this.total += n;
    this.onBytes?.(this.total);
  }
}
