import { randomFillSync } from 'node:crypto';

const POOL_SIZE = 16 * 512;
const pool = new Uint8Array(POOL_SIZE);
let offset = POOL_SIZE;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A UUIDv7 (RFC 9562 §5.7): 48 bits of Unix milliseconds, then random bits. Ids
 * sort roughly by creation time, so the store's id index grows at its right edge.
 */
export function uuidV7(nowMs: number): string {
  if (offset + 10 > POOL_SIZE) {
    randomFillSync(pool);
    offset = 0;
  }
  const b = pool;
  const o = offset;
  offset += 10;
  const ms = Math.max(0, Math.floor(nowMs));
  const high = Math.floor(ms / 0x1_0000_0000);
  const low = ms >>> 0;
  const h = (n: number) => HEX[n & 0xff] as string;
  return (
    h(high >>> 8) +
    h(high) +
    h(low >>> 24) +
    h(low >>> 16) +
    '-' +
    h(low >>> 8) +
    h(low) +
    '-' +
    // version 7 in the top nibble of byte 6
    h(0x70 | ((b[o] as number) & 0x0f)) +
    h(b[o + 1] as number) +
    '-' +
    // RFC 9562 variant 0b10 in the top bits of byte 8
    h(0x80 | ((b[o + 2] as number) & 0x3f)) +
    h(b[o + 3] as number) +
    '-' +
    h(b[o + 4] as number) +
    h(b[o + 5] as number) +
    h(b[o + 6] as number) +
    h(b[o + 7] as number) +
    h(b[o + 8] as number) +
    h(b[o + 9] as number)
  );
}
