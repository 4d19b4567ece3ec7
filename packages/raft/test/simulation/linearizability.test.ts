import { describe, expect, it } from 'vitest';
import { checkLinearizable, type KvOperation } from '../../src/simulation/linearizability.js';

const INF = Number.POSITIVE_INFINITY;
const put = (client: number, key: string, value: string, call: number, ret: number): KvOperation => ({
  client,
  kind: 'put',
  key,
  value,
  call,
  ret,
});
const get = (client: number, key: string, value: string | null, call: number, ret: number): KvOperation => ({
  client,
  kind: 'get',
  key,
  value,
  call,
  ret,
});

describe('checkLinearizable', () => {
  it('accepts a sequential history that follows register semantics', () => {
    expect(
      checkLinearizable([
        put(0, 'a', 'v1', 0, 1),
        get(1, 'a', 'v1', 2, 3),
        put(0, 'a', 'v2', 4, 5),
        get(1, 'a', 'v2', 6, 7),
      ]).ok,
    ).toBe(true);
  });

  it('rejects a read of a value that was overwritten before the read began', () => {
    const result = checkLinearizable([put(0, 'a', 'v1', 0, 1), put(0, 'a', 'v2', 2, 3), get(1, 'a', 'v1', 4, 5)]);
    expect(result).toMatchObject({ ok: false, key: 'a' });
  });

  it('accepts either order for overlapping operations', () => {
    expect(checkLinearizable([put(0, 'a', 'v1', 0, 10), get(1, 'a', null, 1, 2), get(2, 'a', 'v1', 3, 4)]).ok).toBe(
      true,
    );
  });

  it('rejects a read that goes back in time (stale read after a newer read)', () => {
    const history = [put(0, 'a', 'v1', 0, 10), get(1, 'a', 'v1', 1, 2), get(2, 'a', null, 3, 4)];
    expect(checkLinearizable(history).ok).toBe(false);
  });

  it('lets a write of unknown outcome take effect late or never', () => {
    expect(checkLinearizable([put(0, 'a', 'v1', 0, INF), get(1, 'a', null, 5, 6), get(1, 'a', 'v1', 7, 8)]).ok).toBe(
      true,
    );
    expect(checkLinearizable([put(0, 'a', 'v1', 0, INF), get(1, 'a', null, 5, 6), get(1, 'a', null, 7, 8)]).ok).toBe(
      true,
    );
  });

  it('rejects a read of a value nobody wrote, and reports the key', () => {
    const result = checkLinearizable([put(0, 'a', 'v1', 0, 1), put(0, 'b', 'w1', 0, 1), get(1, 'b', 'zz', 2, 3)]);
    expect(result).toMatchObject({ ok: false, key: 'b' });
  });

  it('checks keys independently', () => {
    const history: KvOperation[] = [];
    for (let i = 0; i < 40; i++) {
      history.push(put(i % 3, `k${i % 4}`, `v${i}`, i * 10, i * 10 + 15));
      history.push(get((i + 1) % 3, `k${i % 4}`, `v${i}`, i * 10 + 20, i * 10 + 25));
    }
    expect(checkLinearizable(history)).toEqual({ ok: true, inconclusive: false });
  });
});
