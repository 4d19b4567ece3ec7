import { createOperationId, type OperationType, type SingleReceiptBody } from '@unrdf/receipts';

const hex = (n: number) => n.toString(16).padStart(64, '0');

/**
 * One operation's facts as the daemon would report them (times and ids come in): the
 * receipt body every receipts benchmark and profile appends. About 1 in 1,000 failed.
 */
export function syntheticSingleBody(type: Exclude<OperationType, 'batch'>, n: number, now: number): SingleReceiptBody {
  return {
    operationId: createOperationId(),
    type,
    subject: `urn:unrdf:entity:${n % 10_007}`,
    inputDigest: hex(n),
    outputDigest: type === 'delete' ? null : hex(n + 1),
    outcome: n % 997 === 0 ? { status: 'failed', errorCode: 'HANDLER_ERROR' } : { status: 'succeeded' },
    attempt: 1,
    submittedAt: now,
    startedAt: now,
    finishedAt: now,
    nodeId: 'bench-node-1',
  };
}

/** The i-th single body of a create/update/delete rotation, stamped now. */
export const rotatingSingleBody = (i: number): SingleReceiptBody =>
  syntheticSingleBody((['create', 'update', 'delete'] as const)[i % 3] as 'create', i, Date.now());
