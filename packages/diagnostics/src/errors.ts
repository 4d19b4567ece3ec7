/** Base class of every error this package throws: a stable `code` and a `cause`. */
export class DiagnosticsError extends Error {
  override readonly name: string = 'DiagnosticsError';
  readonly code: string = 'UNRDF_DIAGNOSTICS';
}

/**
 * A remote hybrid-logical-clock timestamp is further ahead of our physical clock
 * than the configured bound; accepting it would drag our clock into the future.
 */
export class ClockDriftError extends DiagnosticsError {
  override readonly name = 'ClockDriftError';
  override readonly code = 'UNRDF_DIAGNOSTICS_CLOCK_DRIFT';
  readonly remoteWallMs: number;
  readonly localWallMs: number;
  readonly maxDriftMs: number;
  constructor(remoteWallMs: number, localWallMs: number, maxDriftMs: number, options?: ErrorOptions) {
    super(
      `A remote clock is ${remoteWallMs - localWallMs} ms ahead of ours (bound ${maxDriftMs} ms); check NTP on that node before trusting its timestamps.`,
      options,
    );
    this.remoteWallMs = remoteWallMs;
    this.localWallMs = localWallMs;
    this.maxDriftMs = maxDriftMs;
  }
}

/** Options given to a factory failed validation; the message lists `path: message` lines. */
export class InvalidOptionsError extends DiagnosticsError {
  override readonly name = 'InvalidOptionsError';
  override readonly code = 'UNRDF_DIAGNOSTICS_INVALID_OPTIONS';
  readonly what: string;
  readonly issues: readonly string[];
  constructor(what: string, issues: readonly string[], options?: ErrorOptions) {
    super(`Invalid ${what}:\n${issues.join('\n')}`, options);
    this.what = what;
    this.issues = issues;
  }
}

/** A value handed to `observe` or `recordOperation` cannot be recorded (e.g. a NaN or negative duration); nothing was recorded. */
export class InvalidObservationError extends DiagnosticsError {
  override readonly name = 'InvalidObservationError';
  override readonly code = 'UNRDF_DIAGNOSTICS_INVALID_OBSERVATION';
  readonly issues: readonly string[];
  constructor(issues: readonly string[], options?: ErrorOptions) {
    super(`Invalid observation, nothing recorded; pass a finite duration >= 0 ms:\n${issues.join('\n')}`, options);
    this.issues = issues;
  }
}

/** A node's answer could not be used: it timed out, was unreachable, too large or malformed. */
export class NodeQueryError extends DiagnosticsError {
  override readonly name = 'NodeQueryError';
  override readonly code = 'UNRDF_DIAGNOSTICS_NODE_QUERY';
  readonly nodeId: string;
  readonly reason: 'timeout' | 'unreachable' | 'too_large' | 'invalid' | 'http_error';
  readonly detail: string;
  constructor(
    nodeId: string,
    reason: 'timeout' | 'unreachable' | 'too_large' | 'invalid' | 'http_error',
    detail: string,
    options?: ErrorOptions,
  ) {
    super(`Node ${nodeId}: ${reason} (${detail}).`, options);
    this.nodeId = nodeId;
    this.reason = reason;
    this.detail = detail;
  }
}
