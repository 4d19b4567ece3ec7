// `@unrdf/diagnostics/wire`: the paths and schemas a process shares with the diagnostics of
// another thread or node, without the rest of the package (logger, metrics, histograms,
// report bundles). An HTTP front on a thread of its own starts sooner with only these.

export { DIAGNOSTICS_PATHS } from './paths.js';
export { type SloDefinition, SloDefinitionSchema } from './slo.js';
