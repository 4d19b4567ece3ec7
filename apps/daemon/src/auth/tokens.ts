import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fchmodSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  type Stats,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { nanoid } from 'nanoid';
import { z } from 'zod';

/** What a token may do. `admin` implies `submit` and `read`. */
export const TokenScopeSchema = z.enum(['submit', 'read', 'admin']);
export type TokenScope = z.infer<typeof TokenScopeSchema>;

/** Every token starts with this, so secret scanners and people recognise it. */
export const TOKEN_PREFIX = 'unrdf_';
/** File names inside the data directory. */
export const TOKEN_FILES = { store: 'tokens.json', adminToken: 'admin.token' } as const;

const HexSha256 = z.string().regex(/^[0-9a-f]{64}$/);

/** One stored token: only the SHA-256 of the token is kept, never the token. */
export const StoredTokenSchema = z.strictObject({
  id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  sha256: HexSha256,
  scopes: z.array(TokenScopeSchema).min(1),
  createdAt: z.iso.datetime(),
  label: z.string().max(200).optional(),
});
export type StoredToken = z.infer<typeof StoredTokenSchema>;

const TokenFileSchema = z.strictObject({
  version: z.literal(1),
  tokens: z.array(StoredTokenSchema),
});
type TokenFile = z.infer<typeof TokenFileSchema>;

/** Who a verified token belongs to. */
export interface TokenIdentity {
  readonly id: string;
  readonly scopes: readonly TokenScope[];
}

/** A new token: the only time the token itself is visible. */
export interface IssuedToken extends TokenIdentity {
  readonly token: string;
}

/** The API tokens of one data directory, kept in `<dataDir>/tokens.json` (mode 0600). */
export interface TokenStore {
  readonly path: string;
  /**
   * Creates a token with these scopes; the token is returned once and stored only as its
   * hash. `token` stores that (well-formed) token instead of a fresh one.
   */
  createToken(
    scopes: readonly TokenScope[],
    options?: { readonly label?: string; readonly token?: string },
  ): IssuedToken;
  /** The identity of a valid token, or undefined (constant-time comparison of hashes). */
  verify(token: string | undefined): TokenIdentity | undefined;
  /** Removes a token; false when no token has this id. */
  revoke(id: string): boolean;
  /** The stored tokens (ids, scopes, creation times; no secrets). */
  list(): readonly Omit<StoredToken, 'sha256'>[];
}

/** The tokens file is missing pieces, too permissive, or not ours. */
export class TokenStoreError extends Error {
  override readonly name = 'TokenStoreError';
  readonly code = 'UNRDF_APP_TOKEN_STORE';
}

/** True when `granted` allows `needed` (admin allows everything). */
export function scopeAllows(granted: readonly TokenScope[], needed: TokenScope): boolean {
  return granted.includes('admin') || granted.includes(needed);
}

const sha256 = (token: string): Buffer => hash('sha256', token, 'buffer');

/** 256 random bits, base64url, behind the prefix: `unrdf_` + 43 characters. */
function generateToken(): string {
  return `${TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
}

const WELL_FORMED_TOKEN = new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`);

/**
 * Writes a file readable by its owner only, atomically and durably: a temp file, synced,
 * renamed over the old one, then the directory synced, so a crash leaves the old file or
 * the new one, never an empty or partial one.
 */
function writePrivate(path: string, content: string): void {
  const temp = `${path}.${process.pid}.${nanoid(8)}.tmp`;
  const fd = openSync(temp, 'wx', 0o600);
  try {
    fchmodSync(fd, 0o600); // the umask cannot widen it, but be explicit
    writeFileSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temp, path);
  const dir = openSync(dirname(path), 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/** How often `verify` looks whether another process changed tokens.json (ms). */
export const DEFAULT_TOKEN_RECHECK_MS = 1000;

/** Verification results kept in memory at most (valid tokens and recent wrong guesses). */
const MAX_VERIFIED_TOKENS = 1024;

/** Options of {@link openTokenStore}. */
export interface TokenStoreOptions {
  /**
   * `verify` stats tokens.json at most this often (ms), so a token another process
   * added or revoked takes effect within this time; 0 stats on every call. Writes and
   * `list` always look. Default {@link DEFAULT_TOKEN_RECHECK_MS}.
   */
  readonly recheckMs?: number;
  /** Monotonic milliseconds (tests inject a clock). Default `performance.now`. */
  readonly now?: () => number;
}

/**
 * Opens (or creates on first write) the token store of a data directory. The file is
 * re-read when another process (the CLI) changed it: at once for writes and `list`,
 * within `recheckMs` for `verify` (a stat per request cost more than the rest of the
 * check on the hot path).
 * @throws {TokenStoreError} when tokens.json is malformed or writable by others.
 * @example
 * const tokens = openTokenStore('./data');
 * const { token } = tokens.createToken(['submit', 'read']);
 * tokens.verify(token); // { id, scopes: ['submit', 'read'] }
 */
export function openTokenStore(dataDir: string, options: TokenStoreOptions = {}): TokenStore {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const path = join(dataDir, TOKEN_FILES.store);
  const recheckMs = options.recheckMs ?? DEFAULT_TOKEN_RECHECK_MS;
  const now = options.now ?? (() => performance.now());
  let cache: { file: TokenFile; hashes: Buffer[]; stamp: string } | undefined;
  let checkedAt = Number.NEGATIVE_INFINITY;
  /** Tokens verified against the current file (cleared when it changes): no hash per request. */
  const verified = new Map<string, TokenIdentity | undefined>();

  const load = (): { file: TokenFile; hashes: Buffer[] } => {
    checkedAt = now();
    let stats: Stats | undefined;
    try {
      stats = statSync(path);
    } catch {
      stats = undefined;
    }
    // The mode is part of the stamp: a chmod changes neither the time nor the size.
    const stamp = stats === undefined ? 'missing' : `${stats.mtimeMs}:${stats.size}:${stats.ino}:${stats.mode}`;
    if (cache?.stamp === stamp) return cache;
    let file: TokenFile = { version: 1, tokens: [] };
    if (stats !== undefined) {
      // Whoever can write the file can add a token of their own: fail closed, as ssh does
      // with a key file others can read. (Others reading it learn only hashes of 256-bit tokens.)
      if ((stats.mode & 0o022) !== 0) {
        throw new TokenStoreError(
          `${path} is writable by others (mode ${(stats.mode & 0o777).toString(8)}): anyone who can write it can add a token; chmod 600 it.`,
        );
      }
      let json: unknown;
      try {
        json = JSON.parse(readFileSync(path, 'utf8'));
      } catch (error) {
        throw new TokenStoreError(`${path} is not JSON; fix or remove it (every token is lost then).`, {
          cause: error,
        });
      }
      const parsed = TokenFileSchema.safeParse(json);
      if (!parsed.success) {
        const lines = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
        throw new TokenStoreError(`${path} is malformed:\n${lines.join('\n')}`);
      }
      file = parsed.data;
    }
    cache = { file, hashes: file.tokens.map((t) => Buffer.from(t.sha256, 'hex')), stamp };
    verified.clear();
    return cache;
  };

  const save = (file: TokenFile) => {
    writePrivate(path, `${JSON.stringify(file, null, 2)}\n`);
    cache = undefined;
  };

  return {
    path,
    createToken(scopes, options = {}) {
      const parsed = z.array(TokenScopeSchema).min(1).safeParse(scopes);
      if (!parsed.success) throw new TokenStoreError('scopes: give one or more of submit, read, admin');
      const unique = [...new Set(parsed.data)];
      if (options.token !== undefined && !WELL_FORMED_TOKEN.test(options.token)) {
        throw new TokenStoreError(`token: not a token of this daemon (${TOKEN_PREFIX} and 43 base64url characters)`);
      }
      const token = options.token ?? generateToken();
      const stored: StoredToken = {
        id: nanoid(12),
        sha256: sha256(token).toString('hex'),
        scopes: unique,
        createdAt: new Date().toISOString(),
        ...(options.label === undefined ? {} : { label: options.label.slice(0, 200) }),
      };
      const { file } = load();
      save({ version: 1, tokens: [...file.tokens, stored] });
      return { id: stored.id, scopes: unique, token };
    },
    verify(token) {
      if (typeof token !== 'string' || !token.startsWith(TOKEN_PREFIX) || token.length > 256) return undefined;
      const { file, hashes } = cache !== undefined && now() - checkedAt < recheckMs ? cache : load();
      if (verified.has(token)) return verified.get(token);
      const candidate = sha256(token);
      let found: StoredToken | undefined;
      // Compare with every stored hash, without stopping early: the time does not tell which one matched.
      for (let i = 0; i < hashes.length; i++) {
        const hash = hashes[i];
        if (hash !== undefined && timingSafeEqual(hash, candidate) && found === undefined) found = file.tokens[i];
      }
      const identity = found && { id: found.id, scopes: found.scopes };
      // Bounded: guesses do not grow it without limit (they are forgotten wholesale).
      if (verified.size >= MAX_VERIFIED_TOKENS) verified.clear();
      verified.set(token, identity);
      return identity;
    },
    revoke(id) {
      const { file } = load();
      const tokens = file.tokens.filter((t) => t.id !== id);
      if (tokens.length === file.tokens.length) return false;
      save({ version: 1, tokens });
      return true;
    },
    list() {
      return load().file.tokens.map(({ sha256: _hidden, ...rest }) => rest);
    },
  };
}

/** The result of {@link ensureAdminToken}. */
export interface AdminToken {
  /** The admin token; undefined when admin.token was deleted after the first start. */
  readonly token: string | undefined;
  /** `<dataDir>/admin.token` (mode 0600). */
  readonly path: string;
  /** True when this call generated it (first start). */
  readonly created: boolean;
}

/**
 * On first start (no admin token in the store) generates an admin token, writes it once
 * to `<dataDir>/admin.token` (mode 0600), then stores its hash: a crash in between leaves
 * a token file the next start adopts, never a stored hash whose token nobody saw. Later
 * starts read that file back (`created: false`).
 * @throws {TokenStoreError} when the store is malformed.
 * @example
 * const { token, path, created } = ensureAdminToken('./data');
 * if (created) console.log(`admin token written to ${path}`);
 */
export function ensureAdminToken(dataDir: string, store: TokenStore = openTokenStore(dataDir)): AdminToken {
  const path = join(dataDir, TOKEN_FILES.adminToken);
  const hasAdmin = store.list().some((t) => t.scopes.includes('admin'));
  if (hasAdmin) {
    if (!existsSync(path)) return { token: undefined, path, created: false };
    const token = readFileSync(path, 'utf8').trim();
    return { token: store.verify(token) ? token : undefined, path, created: false };
  }
  // A token file without its hash in the store: a first start stopped between the two writes.
  const left = existsSync(path) ? readFileSync(path, 'utf8').trim() : undefined;
  const token = left !== undefined && WELL_FORMED_TOKEN.test(left) ? left : generateToken();
  if (token !== left) writePrivate(path, `${token}\n`);
  store.createToken(['admin'], { label: 'generated admin token', token });
  return { token, path, created: true };
}
