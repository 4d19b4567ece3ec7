/**
 * Ed25519 signing through node:crypto (OpenSSL) for the server side. (SHA-256 and
 * Ed25519 verification pick node:crypto at run time in internal/platform.ts.) Tests
 * cross-check its signatures byte for byte against @noble/curves.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { decodeSignerKey, type NoteSigner } from '../note.js';

const b64url = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64url');

/**
 * A signer that signs through node:crypto (OpenSSL) instead of @noble/curves: same key,
 * same deterministic RFC 8032 signatures, several times faster.
 * @throws {KeyError} when the signer key is malformed.
 */
export function nodeSigner(signerKey: string): NoteSigner {
  const { name, keyId, seed, publicKey } = decodeSignerKey(signerKey);
  const key = createPrivateKey({
    key: { kty: 'OKP', crv: 'Ed25519', d: b64url(seed), x: b64url(publicKey) },
    format: 'jwk',
  });
  return Object.freeze({
    name,
    keyId,
    publicKey,
    sign: (message: Uint8Array) => new Uint8Array(sign(null, message, key)),
  });
}
