import type { z } from 'zod';

/** Exit codes of every command: 0 ok, 1 failure, 2 usage error or bad input. */
export const EXIT = Object.freeze({ ok: 0, failure: 1, usage: 2 });

/**
 * A command failed in a way the user should read (never a stack trace). `exitCode` 1 is a
 * failure (daemon unreachable, verification invalid), 2 a usage error or bad input.
 */
export class CliError extends Error {
  override readonly name = 'CliError';
  readonly exitCode: 1 | 2;
  /** `path: message` lines shown under the message (zod issues). */
  readonly issues: readonly string[];
  constructor(message: string, exitCode: 1 | 2, issues: readonly string[] = [], options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
    this.issues = issues;
  }
}

/** Bad input: exit code 2 with the zod issues as `path: message` lines. */
export function usageError(message: string, issues: readonly string[] = [], options?: ErrorOptions): CliError {
  return new CliError(message, 2, issues, options);
}

/** A failure: exit code 1. */
export function failure(message: string, options?: ErrorOptions): CliError {
  return new CliError(message, 1, [], options);
}

/** zod issues as `path: message` lines, prefixed (e.g. `input`). */
export function zodLines(error: z.ZodError, prefix?: string): string[] {
  return error.issues.map((issue) => {
    const path = [...(prefix === undefined ? [] : [prefix]), ...issue.path.map(String)];
    return `${path.length > 0 ? path.join('.') : '(root)'}: ${issue.message}`;
  });
}
