import { createHash } from 'node:crypto';
import { chmodSync, readFileSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tempDir } from '@unrdf/test-utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ensureAdminToken,
  openTokenStore,
  scopeAllows,
  TOKEN_FILES,
  TOKEN_PREFIX,
  TokenStoreError,
} from '../src/auth/tokens.js';

const mode = (path: string) => statSync(path).mode & 0o777;

describe('openTokenStore', () => {
  describe('createToken', () => {
    it('issues prefixed 256-bit tokens and stores only their SHA-256, in a 0600 file', async () => {
      await using dir = await tempDir('tokens');
      const store = openTokenStore(dir.path);
      const issued = store.createToken(['submit', 'read', 'read']);
      expect(issued.token).toMatch(new RegExp(`^${TOKEN_PREFIX}[A-Za-z0-9_-]{43}$`));
      expect(issued.scopes).toEqual(['submit', 'read']);
      const path = dir.join(TOKEN_FILES.store);
      expect(mode(path)).toBe(0o600);
      const text = readFileSync(path, 'utf8');
      expect(text).not.toContain(issued.token);
      expect(text).not.toContain(issued.token.slice(TOKEN_PREFIX.length));
      const file = JSON.parse(text) as { tokens: { id: string; sha256: string; createdAt: string }[] };
      expect(file.tokens).toHaveLength(1);
      expect(file.tokens[0]?.sha256).toBe(createHash('sha256').update(issued.token).digest('hex'));
      expect(Number.isNaN(Date.parse(file.tokens[0]?.createdAt ?? ''))).toBe(false);
      expect(store.list()).toEqual([
        { id: issued.id, scopes: ['submit', 'read'], createdAt: file.tokens[0]?.createdAt },
      ]);
    });

    it('refuses an empty or unknown scope list', async () => {
      await using dir = await tempDir('tokens');
      const store = openTokenStore(dir.path);
      expect(() => store.createToken([])).toThrow(TokenStoreError);
      expect(() => store.createToken(['root' as never])).toThrow(/scopes/);
    });
  });

  describe('verify', () => {
    it('knows each issued token and nothing else', async () => {
      await using dir = await tempDir('tokens');
      const store = openTokenStore(dir.path);
      const a = store.createToken(['read']);
      const b = store.createToken(['admin']);
      expect(store.verify(a.token)).toEqual({ id: a.id, scopes: ['read'] });
      expect(store.verify(b.token)).toEqual({ id: b.id, scopes: ['admin'] });
      fc.assert(
        fc.property(fc.string({ maxLength: 300 }), (guess) => {
          expect(store.verify(guess)).toBeUndefined();
          expect(store.verify(`${TOKEN_PREFIX}${guess}`)).toBeUndefined();
        }),
        { numRuns: 300 },
      );
      // One character off is a different token.
      const last = a.token.at(-1) === 'A' ? 'B' : 'A';
      expect(store.verify(`${a.token.slice(0, -1)}${last}`)).toBeUndefined();
      expect(store.verify(undefined)).toBeUndefined();
    });

    it('sees tokens another process added or revoked (re-reads a changed file)', async () => {
      await using dir = await tempDir('tokens');
      const server = openTokenStore(dir.path, { recheckMs: 0 });
      expect(server.verify(`${TOKEN_PREFIX}x`)).toBeUndefined();
      const cli = openTokenStore(dir.path);
      const issued = cli.createToken(['submit']);
      expect(server.verify(issued.token)?.id).toBe(issued.id);
      expect(cli.revoke(issued.id)).toBe(true);
      expect(cli.revoke(issued.id)).toBe(false);
      expect(server.verify(issued.token)).toBeUndefined();
    });

    it('looks at the file at most once per recheckMs when verifying', async () => {
      await using dir = await tempDir('tokens');
      let clock = 0;
      const server = openTokenStore(dir.path, { recheckMs: 1000, now: () => clock });
      const cli = openTokenStore(dir.path);
      const kept = cli.createToken(['read']);
      expect(server.verify(kept.token)?.id).toBe(kept.id);
      const issued = cli.createToken(['submit']);
      clock = 999; // within the window: the server still answers from what it read
      expect(server.verify(issued.token)).toBeUndefined();
      clock = 1000;
      expect(server.verify(issued.token)?.id).toBe(issued.id);
      cli.revoke(issued.id);
      clock = 1500;
      expect(server.verify(issued.token)?.id).toBe(issued.id);
      clock = 2000;
      expect(server.verify(issued.token)).toBeUndefined();
      expect(server.verify(kept.token)?.id).toBe(kept.id);
      // list() always looks.
      cli.revoke(kept.id);
      expect(server.list().map((t) => t.id)).toEqual([]);
    });

    it('throws on a malformed tokens file instead of letting everyone in', async () => {
      await using dir = await tempDir('tokens');
      writeFileSync(dir.join(TOKEN_FILES.store), '{"version":1,"tokens":[{"id":"x"}]}', { mode: 0o600 });
      expect(() => openTokenStore(dir.path).verify(`${TOKEN_PREFIX}abc`)).toThrow(TokenStoreError);
      writeFileSync(dir.join(TOKEN_FILES.store), 'not json');
      expect(() => openTokenStore(dir.path).list()).toThrow(/not JSON/);
    });

    it('refuses a tokens file others can write (they could add a token), even after a chmod while running', async () => {
      await using dir = await tempDir('tokens');
      const store = openTokenStore(dir.path, { recheckMs: 0 });
      const issued = store.createToken(['read']);
      const path = dir.join(TOKEN_FILES.store);
      expect(store.verify(issued.token)?.id).toBe(issued.id);
      chmodSync(path, 0o644); // others may read: hashes only, still accepted
      expect(store.verify(issued.token)?.id).toBe(issued.id);
      chmodSync(path, 0o620);
      expect(() => store.verify(issued.token)).toThrow(/writable by others \(mode 620\).*chmod 600/);
      expect(() => openTokenStore(dir.path).list()).toThrow(TokenStoreError);
      chmodSync(path, 0o600);
      expect(store.verify(issued.token)?.id).toBe(issued.id);
    });
  });
});

describe('scopeAllows', () => {
  it('lets admin do everything and other scopes only themselves', () => {
    expect(scopeAllows(['admin'], 'submit')).toBe(true);
    expect(scopeAllows(['admin'], 'read')).toBe(true);
    expect(scopeAllows(['read'], 'read')).toBe(true);
    expect(scopeAllows(['read'], 'submit')).toBe(false);
    expect(scopeAllows(['submit'], 'admin')).toBe(false);
    expect(scopeAllows(['submit', 'read'], 'admin')).toBe(false);
  });
});

describe('ensureAdminToken', () => {
  it('generates the admin token once, writes it to a 0600 file, and reads it back later', async () => {
    await using dir = await tempDir('tokens');
    const first = ensureAdminToken(dir.path);
    expect(first.created).toBe(true);
    expect(first.path).toBe(dir.join(TOKEN_FILES.adminToken));
    expect(mode(first.path)).toBe(0o600);
    expect(mode(dir.join(TOKEN_FILES.store))).toBe(0o600);
    expect(readFileSync(first.path, 'utf8').trim()).toBe(first.token);
    expect(readFileSync(dir.join(TOKEN_FILES.store), 'utf8')).not.toContain(first.token);
    expect(openTokenStore(dir.path).verify(first.token)?.scopes).toEqual(['admin']);

    const again = ensureAdminToken(dir.path);
    expect(again).toEqual({ token: first.token, path: first.path, created: false });
    expect(openTokenStore(dir.path).list()).toHaveLength(1);

    // Deleted by its owner after copying it elsewhere: not regenerated behind their back.
    unlinkSync(first.path);
    expect(ensureAdminToken(dir.path)).toEqual({ token: undefined, path: first.path, created: false });
  });

  it('writes the token before its hash: a first start cut off between the two leaves a token the next one adopts', async () => {
    await using dir = await tempDir('tokens');
    const cutOff = `${TOKEN_PREFIX}${'A'.repeat(43)}`;
    // admin.token written, tokens.json not yet: what a crash between the two writes leaves.
    writeFileSync(dir.join(TOKEN_FILES.adminToken), `${cutOff}\n`, { mode: 0o600 });
    const adopted = ensureAdminToken(dir.path);
    expect(adopted).toMatchObject({ token: cutOff, created: true });
    expect(openTokenStore(dir.path).verify(cutOff)?.scopes).toEqual(['admin']);
    // Only a well-formed token is adopted.
    expect(() => openTokenStore(dir.path).createToken(['read'], { token: 'nope' })).toThrow(TokenStoreError);
  });
});
