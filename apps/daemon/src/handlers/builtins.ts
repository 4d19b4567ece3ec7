// The operation types the reference app ships, on both sides of the HTTP front's thread:
// the handlers (daemon's thread) and their submit side (the front checks and digests
// submissions of these types itself, see http/daemon-port.ts). One place, so the two agree.
import type { HandlerDefinition, SubmitDefinition } from '@unrdf/daemon';
import { createRdfHandlers, createRdfSubmitDefinitions, type EntityStore } from '../rdf/index.js';
import { sleepHandler } from './sleep.js';

/** The built-in handlers over the entity store. */
export function builtinHandlers(store: EntityStore): Readonly<Record<string, HandlerDefinition>> {
  return { ...createRdfHandlers(store), sleep: sleepHandler };
}

/** The submit side of the built-in types (no store: it runs on the HTTP front's thread). */
export function builtinSubmitDefinitions(): Readonly<Record<string, SubmitDefinition>> {
  return { ...createRdfSubmitDefinitions(), sleep: { inputSchema: sleepHandler.inputSchema } };
}
