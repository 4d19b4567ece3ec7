import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { fromBase64, fromHex, toBase64, toHex } from '../src/internal/bytes.js';

describe('hex and base64 helpers', () => {
  it('round-trip random bytes and agree with Buffer', () => {
    for (let n = 0; n < 100; n++) {
      const bytes = randomBytes(n);
      expect(toHex(bytes)).toBe(bytes.toString('hex'));
      expect(fromHex(bytes.toString('hex'))).toEqual(new Uint8Array(bytes));
      expect(toBase64(bytes)).toBe(bytes.toString('base64'));
      expect(fromBase64(bytes.toString('base64'))).toEqual(new Uint8Array(bytes));
    }
  });

  it('accept only the one canonical text form', () => {
    for (const bad of ['A0', 'a', 'g0', '0x', 'é0', ' 00', '0\u0130']) expect(fromHex(bad), bad).toBeUndefined();
    for (const bad of ['AB==', 'AA', 'AA=', 'A===', 'AA==\n', 'AA ==', '-_8=', 'AAB='])
      expect(fromBase64(bad), bad).toBeUndefined();
  });
});
