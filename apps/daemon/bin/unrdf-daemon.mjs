#!/usr/bin/env node
// `unrdf-daemon`: runs src/cli/main.ts from source in this process, no build needed.

// node:sqlite and the module hooks need Node 22.12+ (the repo runs 24: `eval "$(./run env)"`).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`unrdf-daemon needs Node.js 22.12 or newer; this is ${process.version}.\n`);
  process.exit(1);
}
const { registerSourceHooks } = await import('./source-hooks.mjs');
await registerSourceHooks();
await import(new URL('../src/cli/main.ts', import.meta.url).href);
