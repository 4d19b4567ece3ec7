import { existsSync, readFileSync, statSync } from 'node:fs';
import { parseVerifierKey, type TrustedKey } from '@unrdf/receipts';
import { z } from 'zod';
import { usageError, zodLines } from './errors.js';

const Size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

const KeyEntrySchema = z.looseObject({
  verifierKey: z.string().min(1),
  fromSize: Size.optional(),
  untilSize: Size.optional(),
  /** The log the key signs for, when its name is not that log's origin. */
  origin: z.string().min(1).optional(),
});

/**
 * A keys document: `{ keys: [...] }` as the API's /v1/keys serves it and as the data
 * directory's keys/keys.json holds it, or a bare array of entries.
 */
const KeysDocumentSchema = z.union([
  z.looseObject({ keys: z.array(KeyEntrySchema).min(1) }),
  z.array(KeyEntrySchema).min(1),
]);

/**
 * Tree-size windows of a key list: an entry without `untilSize` that another entry
 * follows (by `fromSize`) retires where that one takes over, as rotation defines it.
 */
function windowed(entries: readonly z.infer<typeof KeyEntrySchema>[]): TrustedKey[] {
  const sorted = [...entries].sort((a, b) => (a.fromSize ?? 0) - (b.fromSize ?? 0));
  return sorted.map((entry, i) => {
    const fromSize = entry.fromSize ?? 0;
    const next = sorted[i + 1];
    const untilSize =
      entry.untilSize ?? (next !== undefined && (next.fromSize ?? 0) > fromSize ? next.fromSize : undefined);
    const origin = entry.origin === undefined ? {} : { origin: entry.origin };
    return untilSize === undefined
      ? { verifierKey: entry.verifierKey, fromSize, ...origin }
      : { verifierKey: entry.verifierKey, fromSize, untilSize, ...origin };
  });
}

function checkKey(text: string, where: string): string {
  try {
    parseVerifierKey(text);
  } catch (error) {
    throw usageError(`${where} is not a verifier key (name+keyid+base64): ${(error as Error).message}`);
  }
  return text;
}

/** Parses the text of one `--key`: a keys JSON document, or verifier keys one a line. */
function keysOfText(text: string, where: string): TrustedKey[] {
  const trimmed = text.trim();
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (error) {
      throw usageError(`${where} is not valid JSON: ${(error as Error).message}`);
    }
    const parsed = KeysDocumentSchema.safeParse(json);
    if (!parsed.success) throw usageError(`${where} is not a keys document`, zodLines(parsed.error));
    const entries = Array.isArray(parsed.data) ? parsed.data : parsed.data.keys;
    for (const [i, entry] of entries.entries()) checkKey(entry.verifierKey, `${where} keys.${i}.verifierKey`);
    return windowed(entries);
  }
  const lines = trimmed.split('\n').map((line) => line.trim());
  const keys = lines.filter((line) => line !== '' && !line.startsWith('#'));
  if (keys.length === 0) throw usageError(`${where} holds no verifier key`);
  return keys.map((key) => ({ verifierKey: checkKey(key, where), fromSize: 0 }));
}

/**
 * The trusted keys of `--key` values, each a file (a `.vkey`, or a keys JSON as served by
 * /v1/keys or kept in `<dataDir>/keys/keys.json`) or a verifier key's text.
 * @throws {CliError} exit 2 for a missing file or a malformed key.
 */
export function loadTrustedKeys(values: readonly string[]): TrustedKey[] {
  if (values.length === 0) throw usageError('give at least one --key (a .vkey file, a keys JSON or the key text)');
  const keys: TrustedKey[] = [];
  for (const value of values) {
    if (existsSync(value) && statSync(value).isFile()) {
      keys.push(...keysOfText(readFileSync(value, 'utf8'), value));
    } else if (/\+[0-9a-f]{8}\+/.test(value) || value.trim().startsWith('{') || value.trim().startsWith('[')) {
      keys.push(...keysOfText(value, '--key'));
    } else {
      throw usageError(`--key ${value}: no such file, and not a verifier key`);
    }
  }
  return keys;
}
