// The HTTP routes the CLI calls (served by src/http); one place to keep them.

/** Submit an operation (202; with `?wait=<ms>` 200 once final with a durable receipt). */
export const OPERATIONS = 'v1/operations';
/** An operation; `?wait=<ms>` long-polls for its final state and durable receipt. */
export const operationPath = (id: string) => `v1/operations/${encodeURIComponent(id)}`;
/** An operation's receipt bundle. */
export const receiptPath = (id: string) => `v1/operations/${encodeURIComponent(id)}/receipt`;
/** The latest signed checkpoint. */
export const CHECKPOINT = 'v1/checkpoint';
/** Trusted verifier keys with their tree-size windows. */
export const KEYS = 'v1/keys';
/** The diagnostic report (`?format=json|md|tar`). */
export const DIAGNOSTICS = 'v1/diagnostics';
export const LIVEZ = 'livez';
export const READYZ = 'readyz';
/** The longest long poll the API grants per request. */
export { MAX_WAIT_MS } from '../http/schemas.js';
