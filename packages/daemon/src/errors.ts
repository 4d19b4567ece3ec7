import type { z } from 'zod';

/** The base class of every error this package throws; `code` is stable across versions. */
export class DaemonError extends Error {
  override readonly name: string = 'DaemonError';
  readonly code: string = 'UNRDF_DAEMON';
}

/** Formats zod issues as `path: message` lines, the way the HTTP API and the CLI show them. */
export function issueLines(error: z.ZodError): string[] {
  return error.issues.map(
    (issue) => `${issue.path.length > 0 ? issue.path.map(String).join('.') : '(root)'}: ${issue.message}`,
  );
}

/** Options, an operation or a bundle failed validation; nothing was written. */
export class InvalidInputError extends DaemonError {
  override readonly name = 'InvalidInputError';
  override readonly code = 'UNRDF_DAEMON_INVALID_INPUT';
  readonly what: string;
  readonly issues: readonly string[];
  constructor(what: string, issues: readonly string[], options?: ErrorOptions) {
    super(`Invalid ${what}; nothing was written. Fix these and retry:\n${issues.join('\n')}`, options);
    this.what = what;
    this.issues = issues;
  }

  static fromZod(what: string, error: z.ZodError): InvalidInputError {
    return new InvalidInputError(what, issueLines(error), { cause: error });
  }
}

/** An operation of a type no handler is registered for. */
export class UnknownTypeError extends DaemonError {
  override readonly name = 'UnknownTypeError';
  override readonly code = 'UNRDF_DAEMON_UNKNOWN_TYPE';
  readonly type: string;
  readonly known: readonly string[];
  constructor(type: string, known: readonly string[]) {
    super(`No handler is registered for operation type '${type}'; known types: ${known.join(', ') || '(none)'}.`);
    this.type = type;
    this.known = known;
  }
}

/** The daemon is not running (not started yet, or closing): retry against a running one. */
export class NotRunningError extends DaemonError {
  override readonly name = 'NotRunningError';
  override readonly code = 'UNRDF_DAEMON_NOT_RUNNING';
  readonly state: string;
  constructor(state: string) {
    super(`The daemon is ${state}; start it (or wait for a restart) and retry.`);
    this.state = state;
  }
}

/** Another process holds the data directory. */
export class DataDirLockedError extends DaemonError {
  override readonly name = 'DataDirLockedError';
  override readonly code = 'UNRDF_DAEMON_DATA_DIR_LOCKED';
  readonly dataDir: string;
  readonly pid: number;
  constructor(dataDir: string, pid: number) {
    super(
      `The data directory ${dataDir} is in use by ${pid > 0 ? `process ${pid}` : 'another process'}; stop that daemon or use another --data-dir.`,
    );
    this.dataDir = dataDir;
    this.pid = pid;
  }
}

/** A signing key file is missing, unreadable, too permissive or inconsistent with the key list. */
export class KeyFileError extends DaemonError {
  override readonly name = 'KeyFileError';
  override readonly code = 'UNRDF_DAEMON_KEY_FILE';
}
