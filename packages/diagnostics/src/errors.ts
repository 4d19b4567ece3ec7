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
  constructor(
    readonly remoteWallMs: number,
    readonly localWallMs: number,
    readonly maxDriftMs: number,
    options?: ErrorOptions,
  ) {
    super(
      `A remote clock is ${remoteWallMs - localWallMs} ms ahead of ours (bound ${maxDriftMs} ms); check NTP on that node before trusting its timestamps.`,
      options,
    );
  }
}

/** Options given to a factory failed validation; the message lists `path: message` lines. */
export class InvalidOptionsError extends DiagnosticsError {
  override readonly name = 'InvalidOptionsError';
  override readonly code = 'UNRDF_DIAGNOSTICS_INVALID_OPTIONS';
  constructor(
    readonly what: string,
    readonly issues: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`Invalid ${what}:\n${issues.join('\n')}`, options);
  }
}

/** A value handed to `observe` or `recordOperation` cannot be recorded (e.g. a NaN or negative duration); nothing was recorded. */
export class InvalidObservationError extends DiagnosticsError {
  override readonly name = 'InvalidObservationError';
  override readonly code = 'UNRDF_DIAGNOSTICS_INVALID_OBSERVATION';
  constructor(
    readonly issues: readonly string[],
    options?: ErrorOptions,
  ) {
    super(`Invalid observation, nothing recorded; pass a finite duration >= 0 ms:\n${issues.join('\n')}`, options);
  }
}

/** A node's answer could not be used: it timed out, was unreachable, too large or malformed. */
export class NodeQueryError extends DiagnosticsError {
  override readonly name = 'NodeQueryError';
  override readonly code = 'UNRDF_DIAGNOSTICS_NODE_QUERY';
  constructor(
    readonly nodeId: string,
    readonly reason: 'timeout' | 'unreachable' | 'too_large' | 'invalid' | 'http_error',
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`Node ${nodeId}: ${reason} (${detail}).`, options);
  }
}
