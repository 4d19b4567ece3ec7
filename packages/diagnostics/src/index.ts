export { ClockDriftError, DiagnosticsError, InvalidOptionsError, NodeQueryError } from './errors.js';
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
