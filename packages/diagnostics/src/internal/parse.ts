import type { z } from 'zod';
import { InvalidOptionsError } from '../errors.js';

/** `path: message` lines for a zod error, the house format for bad input. */
export function issueLines(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.length ? issue.path.join('.') : '(root)'}: ${issue.message}`);
}

/** Parses options once at a factory boundary; throws InvalidOptionsError with `path: message` lines. */
export function parseOptions<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new InvalidOptionsError(what, issueLines(result.error), { cause: result.error });
  return result.data;
}
