export {
  collectDiagnosticReport,
  createLogCollector,
  type LogCollector,
  type LogCollectorOptions,
  type ReportOptions,
} from './cluster.js';
export {
  ClockDriftError,
  DiagnosticsError,
  InvalidObservationError,
  InvalidOptionsError,
  NodeQueryError,
} from './errors.js';
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
export { type DiagnosticNode, type HttpNodeOptions, httpDiagnosticNode } from './http-node.js';
export {
  counterName,
  histogramName,
  INDICATORS,
  type IndicatorName,
  type SliWindow,
} from './indicators.js';
export { LatencyHistogram, type LatencyPercentiles } from './latency-histogram.js';
export { type LogCompleteness, type MergedLogs, mergeLogs, type NodeLogInput } from './log-merge.js';
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
  type Observation,
  type OperationRecord,
} from './metrics.js';
export {
  createNodeDiagnostics,
  type HealthAnswer,
  localDiagnosticNode,
  type NodeDiagnostics,
  type NodeDiagnosticsOptions,
} from './node-diagnostics.js';
export { DIAGNOSTICS_PATHS } from './paths.js';
export {
  type GeneratedAlert,
  generatedAlerts,
  type PrometheusRulesOptions,
  prometheusRules,
} from './prometheus-rules.js';
export { type BundleFile, type BundleManifest, renderReportMarkdown, writeDebugBundle } from './report.js';
export { type DiagnosticReport, DiagnosticReportSchema } from './report-schema.js';
export type { ResourceSampler } from './resources.js';
export {
  type BurnRatePolicy,
  DEFAULT_BURN_RATE_POLICIES,
  evaluateSlos,
  type IndicatorData,
  parseSloDefinitions,
  type SloDefinition,
  SloDefinitionSchema,
  type SloStatus,
  SPEC_SLOS,
} from './slo.js';
export {
  type ConsensusView,
  type NodeSnapshot,
  NodeSnapshotSchema,
  type ResourceUsage,
  type SnapshotRequest,
} from './snapshot.js';
