// Loads the app from source: tsx compiles the TypeScript, and a resolve hook adds the
// `@unrdf/source` export condition so the workspace packages load from their src/ too
// (what `node --conditions=@unrdf/source --import tsx` does for the tests and the
// `start` script). Used by the bin and by the HTTP front's worker thread, which does not
// inherit hooks registered with module.register().
import { register } from 'node:module';

const flags = process.execArgv.join(' ');

/** Registers the hooks unless this thread's Node flags already load tsx with the condition. */
export async function registerSourceHooks() {
  if (/--import[= ]\S*tsx/.test(flags) && flags.includes('@unrdf/source')) return;
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
}
