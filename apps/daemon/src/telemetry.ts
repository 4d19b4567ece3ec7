import type { Meter } from '@opentelemetry/api';
import { PrometheusExporter, PrometheusSerializer } from '@opentelemetry/exporter-prometheus';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider } from '@opentelemetry/sdk-metrics';

/** Options of {@link createTelemetry}. */
export interface TelemetryOptions {
  /** `service.name` of the resource (default `unrdf-daemon`). */
  readonly serviceName?: string;
  /** `service.version`. */
  readonly serviceVersion?: string;
  /** `service.instance.id`: the node id. */
  readonly instanceId?: string;
}

/** The OpenTelemetry metrics SDK of the app, read by Prometheus through `/metrics`. */
export interface Telemetry extends AsyncDisposable {
  /** Give this to `createDaemon({ meter })`. */
  readonly meter: Meter;
  /** Collects every instrument now and renders the Prometheus text exposition. */
  metricsText(): Promise<string>;
  shutdown(): Promise<void>;
}

/**
 * Wires the OTel SDK: a MeterProvider with a pull-mode Prometheus reader that starts no
 * server of its own; the app's HTTP API serves the text on `/metrics`.
 * @example
 * const telemetry = createTelemetry({ instanceId: 'node-1' });
 * const daemon = createDaemon({ dataDir, meter: telemetry.meter });
 * const text = await telemetry.metricsText();
 */
export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({
      'service.name': options.serviceName ?? 'unrdf-daemon',
      ...(options.serviceVersion === undefined ? {} : { 'service.version': options.serviceVersion }),
      ...(options.instanceId === undefined ? {} : { 'service.instance.id': options.instanceId }),
    }),
    readers: [exporter],
  });
  // No prefix, no timestamps (Prometheus stamps scrapes itself), resource as target_info,
  // no otel_scope_* labels: the unrdf_ names already say where a series comes from.
  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  let closed: Promise<void> | undefined;
  const shutdown = () => {
    closed ??= provider.shutdown();
    return closed;
  };
  return {
    meter: provider.getMeter('unrdf-daemon'),
    async metricsText() {
      const { resourceMetrics } = await exporter.collect();
      return serializer.serialize(resourceMetrics);
    },
    shutdown,
    [Symbol.asyncDispose]: shutdown,
  };
}
