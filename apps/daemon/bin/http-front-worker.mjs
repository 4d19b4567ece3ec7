// The HTTP front's worker thread (see src/http/front.ts): loads it from source.
import { registerSourceHooks } from './source-hooks.mjs';

await registerSourceHooks();
await import(new URL('../src/http/front-worker.ts', import.meta.url).href);
