/**
 * Client sessions (Raft thesis §6.3), as a pure deterministic table: every replica applies
 * the same log, so every replica makes the same decisions and evicts the same sessions.
 * Shared by the node runtime and the simulator, so the simulator exercises the real rule.
 *
 * A session keeps the results of the requests the client has not acknowledged yet: the
 * client sends with each request its lowest unacknowledged sequence number (`firstUnacked`),
 * and results below it are discarded. A client with several requests in flight (a window)
 * therefore gets each retry answered with that request's own result.
 */

/** The session fields a command carries. */
export interface SessionRequest {
  readonly clientId: string;
  readonly sequence: number;
  /**
   * The client's lowest sequence number whose answer it has not received yet (thesis §6.3).
   * Omitted, it is `sequence`: the client has no other request in flight.
   */
  readonly firstUnacked?: number | undefined;
}

/** What applying one session request did. */
export type SessionOutcome<Result> =
  /** First time: the command ran. */
  | { readonly kind: 'applied'; readonly result: Result }
  /** A retry of a request already applied: answered with its first result, not re-run. */
  | { readonly kind: 'duplicate'; readonly result: Result }
  /** Unknown client past its first request: its session expired; a retry could be a duplicate. */
  | { readonly kind: 'expired' }
  /** Below the client's acknowledged window: it was answered before (or the client pipelined without `firstUnacked`). */
  | { readonly kind: 'stale' }
  /** The client has too many unacknowledged requests; refused, not run. */
  | { readonly kind: 'windowFull' };

interface Session<Result> {
  /** Results of sequences >= this one are kept (the client has not acknowledged them). */
  firstUnacked: number;
  readonly results: Map<number, Result>;
}

/** The serialisable image of a table (results must be JSON-serialisable). */
export type SessionsImage<Result> = readonly (readonly [string, number, readonly (readonly [number, Result])[]])[];

/** A bounded, deterministic table of client sessions. */
export class ClientSessions<Result> {
  /** Map order is least recently used first (re-inserted on every request). */
  private readonly sessions = new Map<string, Session<Result>>();

  private readonly maxSessions: number;
  private readonly maxOutstanding: number;
  constructor(maxSessions: number, maxOutstanding: number) {
    this.maxSessions = maxSessions;
    this.maxOutstanding = maxOutstanding;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Applies one committed request: runs `run` at most once per (clientId, sequence). */
  apply(request: SessionRequest, run: () => Result): SessionOutcome<Result> {
    const { clientId, sequence } = request;
    const lowest = Math.min(request.firstUnacked ?? sequence, sequence);
    let session = this.sessions.get(clientId);
    if (session === undefined) {
      // A new client starts with nothing acknowledged; any other request from an unknown
      // client may repeat one applied before its session was evicted (thesis §6.3).
      if (lowest !== 1) return { kind: 'expired' };
      session = { firstUnacked: 1, results: new Map() };
    } else {
      this.sessions.delete(clientId);
    }
    this.sessions.set(clientId, session);
    if (lowest > session.firstUnacked) {
      for (const seq of session.results.keys()) if (seq < lowest) session.results.delete(seq);
      session.firstUnacked = lowest;
    }
    const known = session.results.get(sequence);
    if (known !== undefined || session.results.has(sequence)) return { kind: 'duplicate', result: known as Result };
    if (sequence < session.firstUnacked) return { kind: 'stale' };
    if (session.results.size >= this.maxOutstanding) return { kind: 'windowFull' };
    const result = run();
    session.results.set(sequence, result);
    if (this.sessions.size > this.maxSessions) {
      const oldest = this.sessions.keys().next().value as string;
      this.sessions.delete(oldest);
    }
    return { kind: 'applied', result };
  }

  /** The table as plain data, for a snapshot. */
  image(): SessionsImage<Result> {
    return [...this.sessions].map(([id, s]) => [id, s.firstUnacked, [...s.results]] as const);
  }

  /**
   * Replaces the table with `image`; `lastResultOnly` reads the older format of one result
   * per client (`[clientId, lastSequence, result]`).
   */
  restore(image: readonly (readonly unknown[])[], lastResultOnly = false): void {
    this.sessions.clear();
    for (const row of image) {
      const [id, first, results] = row as [string, number, unknown];
      if (lastResultOnly) {
        this.sessions.set(id, { firstUnacked: first, results: new Map([[first, results as Result]]) });
      } else {
        this.sessions.set(id, { firstUnacked: first, results: new Map(results as [number, Result][]) });
      }
    }
  }
}
