import type { ReceiptBody, SingleReceiptBody } from '../src/index.js';

const digest = (n: number) => n.toString(16).padStart(64, '0');

/** A valid body for operation number `n`; deterministic so replicas and tests agree. */
export function bodyFor(n: number, type: 'create' | 'update' | 'delete' = 'create'): SingleReceiptBody {
  const t = 1_800_000_000_000 + n * 10;
  return {
    operationId: `op_${n.toString(36).padStart(6, '0')}`,
    type,
    subject: `urn:entity:${n % 97}`,
    inputDigest: digest(n),
    outputDigest: type === 'delete' ? null : digest(n + 1),
    outcome: n % 13 === 0 ? { status: 'failed', errorCode: 'HANDLER_TIMEOUT' } : { status: 'succeeded' },
    attempt: 1 + (n % 3),
    submittedAt: t,
    startedAt: t + 1,
    finishedAt: t + 3,
    nodeId: 'node-a',
  };
}

export const bodies = (count: number, from = 0): ReceiptBody[] =>
  Array.from({ length: count }, (_, i) => bodyFor(from + i, (['create', 'update', 'delete'] as const)[(from + i) % 3]));
