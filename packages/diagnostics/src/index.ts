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
  counterName,
  histogramName,
  INDICATORS,
  type IndicatorName,
  SLI_WINDOWS,
  type SliWindow,
} from './indicators.js';
export { LatencyHistogram, type LatencyPercentiles } from './latency-histogram.js';
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
export {
  createMetrics,
  type Metrics,
  type MetricsOptions,
  type MetricsSnapshot,
  MetricsSnapshotSchema,
  type Observation,
  type OperationRecord,
} from './metrics.js';
export { parseSloDefinitions, type SloDefinition, SloDefinitionSchema, SPEC_SLOS } from './slo.js';
