// Test tooling of @unrdf/raft (subpath `@unrdf/raft/testing`): never for production traffic.
export { createFaultProxy, type FaultProxy } from './fault-proxy.js';
