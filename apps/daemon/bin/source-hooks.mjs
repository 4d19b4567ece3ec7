// Loads the app from source. Node runs the TypeScript itself (type stripping: on by default
// since Node 22.18 and 23.6; the sources use only erasable syntax, `erasableSyntaxOnly` in
// tsconfig.base.json), and one synchronous resolve hook in this thread adds what Node's
// resolver lacks:
// - the `@unrdf/source` export condition, so the workspace packages load from their src/;
// - the TypeScript convention of importing `./x.js` for the source file `./x.ts`.
// Without type stripping (older Node), tsx compiles the sources instead, through hooks on
// a loader thread: the same result, slower to start (each module a round trip to it).
// Used by the bin and by the HTTP front's worker thread: hooks are per thread.
import { existsSync } from 'node:fs';
import * as nodeModule from 'node:module';
import { fileURLToPath } from 'node:url';

const CONDITION = '@unrdf/source';
const flags = process.execArgv.join(' ');

/**
 * Registers the hooks unless this thread's Node flags already load tsx with the condition.
 * Also turns on Node's on-disk compile cache (`$NODE_COMPILE_CACHE`, else a directory in
 * the OS's temp dir): later starts skip type stripping and compiling of unchanged modules.
 */
export async function registerSourceHooks() {
  nodeModule.enableCompileCache?.();
  if (/--import[= ]\S*tsx/.test(flags) && flags.includes(CONDITION)) return;
  if (process.features.typescript && typeof nodeModule.registerHooks === 'function') {
    nodeModule.registerHooks({ resolve: resolveSource });
    return;
  }
  const { register: registerTsx } = await import('tsx/esm/api');
  registerTsx();
  // Registered after tsx, so it runs first (hooks chain last-in first-out) and tsx and Node's
  // resolver both see the extra condition.
  nodeModule.register(
    `data:text/javascript,${encodeURIComponent(
      'export async function resolve(specifier, context, next) {' +
        ` const conditions = context.conditions.includes('${CONDITION}') ? context.conditions : ['${CONDITION}', ...context.conditions];` +
        ' return next(specifier, { ...context, conditions }); }',
    )}`,
  );
}

/** `module.registerHooks` resolve hook: the condition, and `./x.js` → `./x.ts` from a TypeScript file. */
function resolveSource(specifier, context, next) {
  const conditions = context.conditions.includes(CONDITION) ? context.conditions : [CONDITION, ...context.conditions];
  const parent = context.parentURL;
  if (
    parent?.startsWith('file:') &&
    parent.endsWith('.ts') &&
    (specifier.startsWith('./') || specifier.startsWith('../')) &&
    specifier.endsWith('.js')
  ) {
    const source = new URL(`${specifier.slice(0, -3)}.ts`, parent);
    if (existsSync(fileURLToPath(source)) && !existsSync(fileURLToPath(new URL(specifier, parent)))) {
      return next(source.href, { ...context, conditions });
    }
  }
  return next(specifier, { ...context, conditions });
}
