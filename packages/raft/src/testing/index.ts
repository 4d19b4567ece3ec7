// Test tooling of @unrdf/raft (subpath `@unrdf/raft/testing`): never for production traffic.
// ProcessCluster runs this package's scripts/node-process.ts under tsx (a dev dependency).
export { createFaultProxy, type FaultProxy } from './fault-proxy.js';
export {
  type ClusterNodeDump,
  type ClusterNodeStatus,
  type NodeReply,
  ProcessCluster,
  type ProcessClusterOptions,
  SessionClient,
  type StateEvent,
} from './process-cluster.js';
