// Lets a worker thread run this package's TypeScript sources with Node's own type stripping
// (no loader to start): an import of `./x.js` that does not exist resolves to `./x.ts`.
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    try {
      return nextResolve(specifier, context);
    } catch (error) {
      if (!specifier.endsWith('.js') || !(specifier.startsWith('.') || specifier.startsWith('/'))) throw error;
      return nextResolve(`${specifier.slice(0, -3)}.ts`, context);
    }
  },
});
