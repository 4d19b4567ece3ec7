/**
 * What the daemon measures about itself. Each indicator is one OTel histogram
 * `unrdf_<name>_duration_seconds` (bucket boundaries in seconds, sized for the range
 * the SLO spec gives it, every SLO threshold a boundary so Prometheus can count
 * "good" events exactly) and one counter `unrdf_<name>s_total{outcome}`.
 */
export const INDICATORS = {
  operation: {
    description: 'Time from submission to final state of a daemon operation',
    bucketsSeconds: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  },
  receipt: {
    description: 'Time to generate an operation receipt with its Merkle proof',
    bucketsSeconds: [0.001, 0.003, 0.005, 0.01, 0.015, 0.025, 0.03, 0.045, 0.06, 0.1, 0.25, 1],
  },
  verification: {
    description: 'Time to verify a receipt against the ledger',
    bucketsSeconds: [0.01, 0.1, 1, 5, 10, 30, 45, 60, 120, 150, 280, 300, 600],
  },
  failover: {
    description: 'Time from leader failure to a recovered cluster',
    bucketsSeconds: [1, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300],
  },
  queue_wait: {
    description: 'Time an operation waits in the queue before a worker claims it',
    bucketsSeconds: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  },
  health_check: {
    description: 'Time to answer a livez/readyz request',
    bucketsSeconds: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.2, 0.5, 1],
  },
  diagnostic_report: {
    description: 'Time to build the full cluster diagnostic report',
    bucketsSeconds: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  },
  log_aggregation: {
    description: 'Time to merge the cluster log snapshot',
    bucketsSeconds: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 45, 90],
  },
} as const satisfies Record<string, { description: string; bucketsSeconds: readonly number[] }>;

export type IndicatorName = keyof typeof INDICATORS;
export const INDICATOR_NAMES = Object.keys(INDICATORS) as IndicatorName[];

/** Prometheus name of an indicator's latency histogram (base unit seconds, Prometheus naming). */
export const histogramName = (indicator: IndicatorName) => `unrdf_${indicator}_duration_seconds`;
/** Prometheus name of an indicator's event counter (OTel's exporter adds nothing when it ends in `_total`). */
export const counterName = (indicator: IndicatorName) => `unrdf_${indicator}s_total`;

/**
 * The windows SLIs are summed over: the SRE workbook's multi-window alert pairs
 * (5m/1h, 30m/6h, 6h/3d) and the 30-day compliance window. Sums are mergeable
 * across nodes, so the cluster evaluates SLOs exactly from every node's counts.
 */
export const SLI_WINDOWS = { '5m': 5, '30m': 30, '1h': 60, '6h': 360, '3d': 4320, '30d': 43_200 } as const;
export type SliWindow = keyof typeof SLI_WINDOWS;
export const SLI_WINDOW_NAMES = Object.keys(SLI_WINDOWS) as SliWindow[];
