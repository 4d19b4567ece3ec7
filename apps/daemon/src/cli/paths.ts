import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** Default URL of a running daemon. */
export const DEFAULT_URL = 'http://127.0.0.1:8787';
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8787;
/** File names inside the data directory that the CLI reads. */
export const ADMIN_TOKEN_FILE = 'admin.token';

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The data directory: `--data-dir`, else `$UNRDF_DATA_DIR`, else `.unrdf/` under the
 * directory the user ran the command from (`INIT_CWD` when pnpm runs it, else cwd).
 */
export function resolveDataDir(flag: string | undefined, env: Env = process.env, cwd = process.cwd()): string {
  const from = env.INIT_CWD !== undefined && env.INIT_CWD !== '' ? env.INIT_CWD : cwd;
  if (flag !== undefined) return resolve(from, flag);
  if (env.UNRDF_DATA_DIR !== undefined && env.UNRDF_DATA_DIR !== '') return resolve(from, env.UNRDF_DATA_DIR);
  return resolve(from, '.unrdf');
}

/** The daemon URL: `--url`, else `$UNRDF_URL`, else {@link DEFAULT_URL}. */
export function resolveUrl(flag: string | undefined, env: Env = process.env): string {
  return flag ?? (env.UNRDF_URL !== undefined && env.UNRDF_URL !== '' ? env.UNRDF_URL : DEFAULT_URL);
}

/** The bearer token: `--token`, else `$UNRDF_TOKEN`, else the data directory's admin token file if present. */
export function resolveToken(flag: string | undefined, dataDir: string, env: Env = process.env): string | undefined {
  if (flag !== undefined) return flag;
  if (env.UNRDF_TOKEN !== undefined && env.UNRDF_TOKEN !== '') return env.UNRDF_TOKEN;
  const file = join(dataDir, ADMIN_TOKEN_FILE);
  if (!existsSync(file)) return undefined;
  const text = readFileSync(file, 'utf8').trim();
  return text === '' ? undefined : text;
}
