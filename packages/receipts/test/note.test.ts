import { createPublicKey, verify as nodeVerify } from 'node:crypto';
import { stat, writeFile } from 'node:fs/promises';
import { ed25519 } from '@noble/curves/ed25519.js';
import { tempDir } from '@unrdf/test-utils';
import { describe, expect, it } from 'vitest';
import {
  cosignNote,
  formatCheckpoint,
  generateNoteKey,
  hashLeaf,
  KeyError,
  keyIdOf,
  openCheckpoint,
  openNote,
  parseCheckpoint,
  parseSignerKey,
  parseVerifierKey,
  signCheckpoint,
  signNote,
} from '../src/index.js';
import { generateKeyFiles, loadSignerKeyFile, loadVerifierKeyFile, nodeSigner } from '../src/ledger/index.js';
import { isValidKeyName, noteSignatureKeys } from '../src/note.js';
import { hex, noteKat, toHex } from './vectors.js';

const noteOf = (text: string, name: string, sigBase64: string) => `${text}\n\u2014 ${name} ${sigBase64}\n`;

describe('signed-note known answers', () => {
  it('verifies every note vector as expected', () => {
    expect(noteKat.notes.length).toBeGreaterThanOrEqual(4);
    for (const v of noteKat.notes) {
      const verifier = parseVerifierKey(v.vkey);
      expect(verifier.name).toBe(v.keyName);
      expect(verifier.keyId.toString(16).padStart(8, '0')).toBe(v.keyIdHex);
      expect(keyIdOf(v.keyName, verifier.publicKey)).toBe(verifier.keyId);
      const opened = openNote(noteOf(v.text, v.keyName, v.sigBase64), [verifier]);
      expect(opened.ok, v.desc).toBe(v.expect === 'valid');
      if (opened.ok) expect(opened.text).toBe(v.text);
    }
  });

  it('reproduces signatures byte for byte with both @noble/curves and node:crypto', () => {
    const reproducible = noteKat.notes.filter((v) => v.mustReproduceSignature);
    expect(reproducible.length).toBeGreaterThan(0);
    for (const v of reproducible) {
      const expected = noteOf(v.text, v.keyName, v.sigBase64);
      expect(signNote(v.text, [parseSignerKey(v.skey as string)])).toBe(expected);
      expect(signNote(v.text, [nodeSigner(v.skey as string)])).toBe(expected);
    }
  });

  it('matches RFC 8032 TEST 1 in @noble/curves and node:crypto', () => {
    for (const v of noteKat.ed25519) {
      const seed = hex(v.seed);
      expect(toHex(ed25519.getPublicKey(seed))).toBe(v.publicKey);
      expect(toHex(ed25519.sign(hex(v.message), seed))).toBe(v.signature);
      const pub = createPublicKey({
        key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(v.publicKey, 'hex').toString('base64url') },
        format: 'jwk',
      });
      expect(nodeVerify(null, hex(v.message), pub, hex(v.signature))).toBe(true);
    }
  });

  it('reproduces the sumdb tlog record hash and tree note text', () => {
    for (const v of noteKat.tlog) {
      if (v.op === 'recordHash') {
        expect(Buffer.from(hashLeaf(hex(v.input as string))).toString('base64')).toBe(v.expectBase64);
      } else {
        const root = Uint8Array.from(Buffer.from(v.rootBase64 as string, 'base64'));
        const text = formatCheckpoint({ origin: 'go.sum database tree', size: v.treeSize as number, root });
        expect(text).toBe(v.expectText);
        expect(parseCheckpoint(text)).toEqual({
          origin: 'go.sum database tree',
          size: v.treeSize,
          root,
          extensions: [],
        });
      }
    }
  });
});

describe('Ed25519 backends', () => {
  it('noble and node:crypto produce identical signatures that each other verifies', () => {
    for (let i = 0; i < 20; i++) {
      const { signerKey, verifierKey } = generateNoteKey(`k${i}.example/log`);
      const message = crypto.getRandomValues(new Uint8Array(i * 17));
      const a = parseSignerKey(signerKey).sign(message);
      const b = nodeSigner(signerKey).sign(message);
      expect(toHex(a)).toBe(toHex(b));
      expect(parseVerifierKey(verifierKey).verify(message, b)).toBe(true);
    }
  });
});

describe('openNote', () => {
  const { signerKey, verifierKey } = generateNoteKey('example.com/log');
  const other = generateNoteKey('example.com/other');
  const signer = parseSignerKey(signerKey);
  const verifier = parseVerifierKey(verifierKey);
  const note = signNote('hello\n', [signer]);

  it('accepts a note signed by a known key, ignoring unknown ones', () => {
    const twice = signNote('hello\n', [parseSignerKey(other.signerKey), signer]);
    const opened = openNote(twice, [verifier]);
    expect(opened.ok && opened.verifiedBy.map((v) => v.name)).toEqual(['example.com/log']);
  });

  it('rejects malformed notes and unknown or bad signatures without throwing', () => {
    const bad = [
      note.replace('hello', 'hellO'),
      note.replace('\n\n', '\n'),
      note.slice(0, -1),
      note.replace('\u2014', '-'),
      `${note}\u2014 example.com/log AAAA\n`,
      note.replace('hello\n', 'hel\u0007lo\n'),
      'x'.repeat(70_000),
      42,
      null,
    ];
    for (const n of bad) expect(openNote(n, [verifier]).ok, String(n).slice(0, 30)).toBe(false);
    expect(openNote(note, [parseVerifierKey(other.verifierKey)])).toEqual({
      ok: false,
      reason: 'no signature from a trusted key',
    });
  });

  it('refuses text without a final newline', () => {
    expect(() => signNote('hello', [signer])).toThrow(/newline/);
  });

  it('counts one key listed twice once, and refuses two different keys under one name and id', () => {
    const opened = openNote(note, [verifier, parseVerifierKey(verifierKey)]);
    expect(opened.ok && opened.verifiedBy).toHaveLength(1);
    // A second key claiming the same name and key id (it cannot be derived honestly: the id hashes the key).
    const impostor = { ...verifier, publicKey: new Uint8Array(32).fill(7), verify: () => true };
    expect(openNote(note, [verifier, impostor])).toEqual({
      ok: false,
      reason: expect.stringMatching(/^ambiguous key/),
    });
  });
});

describe('isValidKeyName', () => {
  it("rejects exactly Go's unicode.IsSpace characters (the White_Space property) and '+'", () => {
    for (const space of [' ', '\t', '\u0085', '\u00a0', '\u2028', '\u3000']) {
      expect(isValidKeyName(`a${space}b`), JSON.stringify(space)).toBe(false);
    }
    expect(isValidKeyName('a+b')).toBe(false);
    expect(isValidKeyName('')).toBe(false);
    // U+FEFF is not White_Space: Go accepts it in a name, and so does this.
    expect(isValidKeyName('a\ufeffb')).toBe(true);
    expect(isValidKeyName('example.com/log')).toBe(true);
  });
});

describe('noteSignatureKeys', () => {
  it('lists the key name and id of each signature line, in order, without verifying them', () => {
    const a = parseSignerKey(generateNoteKey('example.com/a').signerKey);
    const b = parseSignerKey(generateNoteKey('example.com/b').signerKey);
    const note = cosignNote(signNote('text\n', [a]), [b]);
    expect(noteSignatureKeys(note)).toEqual([
      { name: a.name, keyId: a.keyId },
      { name: b.name, keyId: b.keyId },
    ]);
    expect(noteSignatureKeys(note.replace(/ [A-Za-z0-9+/=]+\n$/, ' AAAA\n'))).toBeUndefined(); // too short
    expect(noteSignatureKeys('text\n')).toBeUndefined();
    expect(noteSignatureKeys('text\n\nnot a signature\n')).toBeUndefined();
  });
});

describe('parseVerifierKey', () => {
  it('rejects malformed keys and mismatched key ids with KeyError', () => {
    const { verifierKey } = generateNoteKey('example.com/log');
    const wrongId = verifierKey.replace(/\+[0-9a-f]{8}\+/, '+00000000+');
    for (const k of [wrongId, 'nope', 'a+b+c', `${verifierKey}A`, verifierKey.replace('example.com/log', 'a b')]) {
      expect(() => parseVerifierKey(k)).toThrow(KeyError);
    }
  });
});

describe('openCheckpoint', () => {
  const old = generateNoteKey('example.com/log');
  const next = generateNoteKey('example.com/log');
  const root = hashLeaf(new Uint8Array());
  const at = (size: number, skey: string) =>
    signCheckpoint({ origin: 'example.com/log', size, root }, [parseSignerKey(skey)]);
  const trusted = [
    { verifierKey: old.verifierKey, untilSize: 100 },
    { verifierKey: next.verifierKey, fromSize: 100 },
  ];

  it('honours key rotation by tree size', () => {
    expect(openCheckpoint(at(99, old.signerKey), trusted).ok).toBe(true);
    expect(openCheckpoint(at(100, old.signerKey), trusted).ok).toBe(false);
    expect(openCheckpoint(at(100, next.signerKey), trusted).ok).toBe(true);
    expect(openCheckpoint(at(99, next.signerKey), trusted).ok).toBe(false);
  });

  it('rejects a signed text that is not a checkpoint', () => {
    const note = signNote('example.com/log\n012\nAAAA\n', [parseSignerKey(old.signerKey)]);
    expect(openCheckpoint(note, trusted).ok).toBe(false);
  });
});

describe('key files', () => {
  it('writes the signer key 0600, loads it back, and refuses a readable one', async () => {
    await using dir = await tempDir('receipts-keys');
    const files = await generateKeyFiles(dir.join('ledger'), 'example.com/log');
    expect((await stat(files.signerKeyPath)).mode & 0o777).toBe(0o600);
    const signer = await loadSignerKeyFile(files.signerKeyPath);
    const verifier = parseVerifierKey(await loadVerifierKeyFile(files.verifierKeyPath));
    expect(openNote(signNote('x\n', [signer]), [verifier]).ok).toBe(true);
    await expect(generateKeyFiles(dir.join('ledger'), 'example.com/log')).rejects.toThrow(KeyError);
    const loose = dir.join('loose.skey');
    await writeFile(loose, 'PRIVATE+KEY+x+00000000+AA==\n', { mode: 0o644 });
    await expect(loadSignerKeyFile(loose)).rejects.toThrow(/chmod 600/);
  });
});

describe('cosignNote', () => {
  it('adds a second signer, replaces a signer re-signing, and both verify', () => {
    const a = generateNoteKey('replica-a.example/log');
    const b = generateNoteKey('replica-b.example/log');
    const one = signNote('example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n', [
      parseSignerKey(a.signerKey),
    ]);
    const two = cosignNote(one, [parseSignerKey(b.signerKey)]);
    expect(two.startsWith(one)).toBe(true);
    const opened = openNote(two, [parseVerifierKey(a.verifierKey), parseVerifierKey(b.verifierKey)]);
    expect(opened.ok && opened.verifiedBy.map((v) => v.name)).toEqual([
      'replica-a.example/log',
      'replica-b.example/log',
    ]);
    expect(cosignNote(two, [parseSignerKey(b.signerKey)])).toBe(two); // deterministic: same line replaced by itself
    expect(() => cosignNote('no signatures\n', [parseSignerKey(b.signerKey)])).toThrow(/signed note/);
  });
});
