import { nobleSha256, platformSha256 } from './platform.js';
import { createTreeHasher } from './tree.js';

export { nobleSha256, platformSha256 };

/** The RFC 9162 tree hasher on the fastest SHA-256 available (node:crypto on Node, else @noble). */
export const platformTree = createTreeHasher(platformSha256);

/** The same tree hasher on @noble/hashes only (what a browser runs). */
export const nobleTree = createTreeHasher(nobleSha256);
