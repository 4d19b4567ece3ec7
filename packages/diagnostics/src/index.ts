export { ClockDriftError, DiagnosticsError, InvalidOptionsError, NodeQueryError } from './errors.js';
export {
  type CheckResult,
  type ConsensusStatus,
  createHealth,
  eventLoopCheck,
  type Health,
  type HealthCheck,
  type HealthEndpoint,
  type HealthOptions,
  type HealthQuery,
  type HealthResponse,
  type LivenessCheck,
  pingCheck,
  queueAcceptingCheck,
  type ReadinessCheck,
  raftLeaderCheck,
  storageWritableCheck,
} from './health.js';
export { compareHlc, createHlc, decodeHlc, encodeHlc, type Hlc, type HlcOptions, type HlcTimestamp } from './hlc.js';
export {
  createNodeLogger,
  type LogPage,
  type LogQuery,
  type LogRecord,
  LogRecordSchema,
  type NodeLogger,
  type NodeLoggerOptions,
  readLogSegments,
} from './logger.js';
