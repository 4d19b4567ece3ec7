// Operations of the end-to-end benchmarks, as a client sends them to the app's HTTP API:
// the spec's create / update / delete / batch on RDF entities, and the synthetic sleep.
import type { Pool } from 'undici';
import { requestJson } from './processes.js';

export const RDF_TYPES = ['create', 'update', 'delete', 'batch'] as const;
export type RdfType = (typeof RDF_TYPES)[number];

const iri = (name: string) => `urn:unrdf:bench:${name}`;

const turtle = (subject: string, n: number) =>
  `<${subject}> <http://schema.org/name> "Entity ${n}" ;\n  <http://schema.org/position> ${n} .\n`;

export interface Submission {
  readonly type: string;
  readonly subject: string;
  readonly input?: unknown;
}

/** A create of a new entity `name`. */
export const createOf = (name: string, n: number): Submission => ({
  type: 'create',
  subject: iri(name),
  input: { data: turtle(iri(name), n) },
});

/**
 * The i-th operation of a mixed run. Updates and deletes act on entities created
 * beforehand (`seeded[k]`, one per update or delete, so none waits for another).
 */
export function operationFor(type: RdfType, i: number, run: string): Submission {
  switch (type) {
    case 'create':
      return createOf(`${run}-c${i}`, i);
    case 'update': {
      const subject = iri(`${run}-u${i}`);
      return { type, subject, input: { data: turtle(subject, i + 1) } };
    }
    case 'delete':
      return { type, subject: iri(`${run}-d${i}`) };
    case 'batch': {
      const operations = Array.from({ length: 10 }, (_, k) => createOf(`${run}-b${i}-${k}`, k));
      return { type, subject: iri(`${run}-batch${i}`), input: { operations } };
    }
  }
}

/** The entities updates and deletes of `operationFor` expect to exist. */
export function seedsFor(type: RdfType, i: number, run: string): Submission | undefined {
  if (type === 'update') return createOf(`${run}-u${i}`, i);
  if (type === 'delete') return createOf(`${run}-d${i}`, i);
  return undefined;
}

export interface Accepted {
  readonly id: string;
}

/** Submits one operation; resolves with its id once the daemon acknowledged it (202: durable). */
export const submit = (pool: Pool, token: string, op: Submission) =>
  requestJson<Accepted>(pool, 'POST', '/v1/operations', { token, body: op, expect: 202 });

interface View {
  readonly id: string;
  readonly state: string;
  readonly outcome: string | null;
  readonly receipt: { readonly leafIndex: number } | null;
}

/**
 * Submits one operation and holds its final state with a durable receipt after one round
 * trip (POST ?wait); falls back to GET ?wait when the POST's wait ran out first (202).
 */
export async function submitAndWait(pool: Pool, token: string, op: Submission, waitMs = 30_000): Promise<View> {
  const view = await requestJson<View>(pool, 'POST', `/v1/operations?wait=${waitMs}`, {
    token,
    body: op,
    expect: [200, 202],
  });
  return view.receipt === null ? awaitReceipt(pool, token, view.id, waitMs) : view;
}

/** Long-polls the operation until it is final with a durable receipt (bounded by waitMs). */
export async function awaitReceipt(pool: Pool, token: string, id: string, waitMs = 30_000): Promise<View> {
  const view = await requestJson<View>(pool, 'GET', `/v1/operations/${id}?wait=${waitMs}`, { token });
  if (view.receipt === null) throw new Error(`operation ${id} has no receipt after ${waitMs} ms (state ${view.state})`);
  return view;
}
