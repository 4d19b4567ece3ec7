import type { HardState, Message, Ready } from '../types.js';
import { supersedeAcks } from './supersede-acks.js';

/**
 * The node runtime's decisions about one Ready that do not need I/O, as pure functions, so
 * the deterministic simulator applies exactly the transformations the runtime applies.
 */

/** Where each message of a Ready goes. */
export interface MessageRoute {
  /** Appends carrying entries: sent before the host's own write (thesis §10.2.1). */
  readonly early: readonly Message[];
  /** Sent after the write is durable (votes, acknowledgements, ...), superseded acks dropped. */
  readonly late: readonly Message[];
  /** Empty appends (commit index, probes), held until the next tick. */
  readonly deferred: readonly Message[];
}

/**
 * Splits a Ready's messages. Empty appends only carry the commit index or probe, so they
 * wait for the next tick (a delayed message is always safe): replies to clients leave
 * first, and under steady writes the next append, with a newer commit index, supersedes
 * them; a held-back empty append to a peer this Ready sends entries to is dropped. Several
 * appends that arrived together are acknowledged by the last success alone.
 */
export function routeMessages(messages: readonly Message[], deferred: readonly Message[]): MessageRoute {
  const early: Message[] = [];
  const rest: Message[] = [];
  const held: Message[] = [];
  for (const m of messages) {
    if (m.type !== 'append') rest.push(m);
    else if (m.entries.length > 0) early.push(m);
    else held.push(m);
  }
  const waiting = held.length === 0 ? deferred : [...deferred, ...held];
  return {
    early,
    late: rest.length > 1 ? supersedeAcks(rest) : rest,
    deferred: early.length > 0 ? waiting.filter((d) => !early.some((b) => b.to === d.to)) : waiting,
  };
}

/** What the host writes for one Ready. */
export interface PersistPlan {
  /** Whether this Ready costs a storage transaction at all. */
  readonly write: boolean;
  /** The hard state to write with it (a held-back commit-only one rides along). */
  readonly hardState: HardState | undefined;
  /** A commit-only hard state held back in memory (written with the next write, or at close). */
  readonly unsaved: HardState | undefined;
}

/**
 * A Ready that only moves the commit index writes nothing: the commit index is volatile
 * (Raft Figure 2) and a restart re-learns it, so it rides with the next synced write.
 */
export function planPersist(rd: Ready, unsaved: HardState | undefined): PersistPlan {
  if (rd.mustSync || rd.entries.length > 0 || rd.snapshot !== undefined) {
    return { write: true, hardState: rd.hardState ?? unsaved, unsaved: undefined };
  }
  return { write: false, hardState: undefined, unsaved: rd.hardState ?? unsaved };
}
