/**
 * CRC-32 as zip records it, incremental (`crc32(b, crc32(a)) === crc32(a ++ b)`): zlib's
 * native one where Node has it (20.15+, 22.2+), else a table-driven fallback (~10x
 * slower, same values), so that older Node 20 releases can still write checkpoints.
 */
import * as zlib from 'node:zlib';

type Crc32 = (data: Uint8Array, value?: number) => number;

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The fallback: reflected polynomial 0xEDB88320, one table lookup per byte. */
export function crc32Table(data: Uint8Array, value = 0): number {
  let c = ~value >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

export const crc32: Crc32 = (zlib as { crc32?: Crc32 }).crc32 ?? crc32Table;
