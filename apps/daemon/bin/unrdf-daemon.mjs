#!/usr/bin/env node
// `unrdf-daemon`: runs src/cli/main.ts from source in this process, no build needed.
// tsx compiles the TypeScript; a resolve hook adds the `@unrdf/source` export condition
// so the workspace packages load from their src/ too (what `node --conditions=@unrdf/source
// --import tsx` does for the tests and the `start` script).
import { register } from 'node:module';

// node:sqlite and the module hooks below need Node 22.12+ (the repo runs 24: `eval "$(./run env)"`).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`unrdf-daemon needs Node.js 22.12 or newer; this is ${process.version}.\n`);
  process.exit(1);
}
const { register: registerTsx } = await import('tsx/esm/api');
registerTsx();
// Registered after tsx, so it runs first (hooks chain last-in first-out) and tsx and Node's
// resolver both see the extra condition.
register(
  `data:text/javascript,${encodeURIComponent(
    'export async function resolve(specifier, context, next) {' +
      " const conditions = context.conditions.includes('@unrdf/source') ? context.conditions : ['@unrdf/source', ...context.conditions];" +
      ' return next(specifier, { ...context, conditions }); }',
  )}`,
);
await import(new URL('../src/cli/main.ts', import.meta.url).href);
