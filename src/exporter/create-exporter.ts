/**
 * createExporter(): the Prometheus exporter as a library. It opens a monitor, collects on its
 * own interval (Collector) and serves the registry over HTTP when asked to listen, or through
 * `handler` mounted in the caller's own server, or registers its families into the caller's
 * prom-client Registry. `gpu-layers serve` is this plus flags and signals.
 */
import type { RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';

import type { Registry } from 'prom-client';

import { GpuLayersError } from '../errors.js';

import type { FlightRecorder, FlightResult } from '../flight-recorder/flight-recorder.js';
import type { LayerOptions } from '../layers/read-layers.js';
import type { LayeredSample } from '../layers/schema.js';
import { openMonitor } from '../monitor/monitor.js';
import { checkSamplingInterval } from '../monitor/sampling-floor.js';
import type { ProbeOptions } from '../probe/options.js';
import { CanarySchedule, type CanaryScheduleOptions } from './canary-schedule.js';
import { Collector } from './collector.js';
import { createExporterMetrics } from './exporter-metrics.js';
import { createMetricsHandler, createMetricsServer } from './metrics-server.js';
import { DEFAULT_EXPORTER_INTERVAL_MS, DEFAULT_EXPORTER_PORT } from './exporter-defaults.js';

export { DEFAULT_EXPORTER_INTERVAL_MS, DEFAULT_EXPORTER_PORT };

export interface ExporterOptions {
  /** Between collections (default 5000, at least 250). */
  intervalMs?: number;
  /** How far back the diagnosis behind gpu_layers_finding looks (default one hour). */
  diagnosisWindowMs?: number;
  probe?: ProbeOptions;
  layers?: LayerOptions;
  onCollectError?: (error: unknown) => void;
  /**
   * Which GPUs and processes to export (serve's -i and --pid): each sample as narrowed, before the
   * diagnosis, the metrics and the flight recorder see it (default: everything NVML lists).
   */
  select?: (sample: LayeredSample) => LayeredSample;
  /** The OOM flight recorder each sample goes through; none: no flights. */
  flights?: FlightRecorder | null;
  onFlights?: (result: FlightResult) => void;
  /** The sequence-consistency canary on a schedule (off without it). */
  canary?: CanaryScheduleOptions;
  /**
   * A prom-client Registry of the caller's to register every gpu-layers family into (removed
   * again by close()): the caller's own /metrics then includes them, values as of the last
   * collection. A name the registry already has rejects with INVALID_OPTIONS before NVML is
   * touched.
   */
  registry?: Registry;
  /**
   * prom-client's default metrics of this process (CPU, resident memory, event loop lag, GC,
   * open file descriptors), prefixed gpu_layers_exporter_ (default false: an agent embedding
   * the exporter has its own).
   */
  processMetrics?: boolean;
  /**
   * The `command` label (each process's command line, cut to 80 characters) on the process
   * series and gpu_layers_finding (default false: command lines change with every flag, can
   * hold secrets, and multiply series; serve --command-label).
   */
  commandLabel?: boolean;
}

export interface Exporter {
  /** The exposition text of the last collection (what GET /metrics returns). */
  metrics(): Promise<string>;
  /**
   * A node:http request listener serving GET /metrics (gzipped when the client accepts it),
   * GET /healthz and GET / (a page listing them): mount it in the caller's server, under a
   * prefix its router strips or on its own port. Needs no listen().
   */
  handler: RequestListener;
  /** The registry the exporter's own families are in (the caller's `registry` has them too). */
  registry: Registry;
  /** Collects now (a scrape never does). */
  collect(): Promise<void>;
  /** Serves /metrics and /healthz; resolves with the address bound. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

export async function createExporter(options: ExporterOptions = {}): Promise<Exporter> {
  const intervalMs = checkSamplingInterval(options.intervalMs ?? DEFAULT_EXPORTER_INTERVAL_MS, 'exporter');
  const metrics = createExporterMetrics({ processMetrics: options.processMetrics === true, commandLabel: options.commandLabel === true });
  const families = metrics.registry.getMetricsAsArray().map((f) => ({ name: f.name, metric: metrics.registry.getSingleMetric(f.name)! }));
  const callerRegistry = options.registry ?? null;
  if (callerRegistry !== null) {
    const taken = families.map((f) => f.name).filter((name) => callerRegistry.getSingleMetric(name) !== undefined);
    if (taken.length > 0) throw new GpuLayersError('INVALID_OPTIONS', `the registry already has ${taken.join(', ')}: one gpu-layers exporter per registry`);
  }
  const monitor = await openMonitor({ probe: options.probe ?? {}, layers: options.layers ?? {} });
  const collector = new Collector(monitor, metrics, {
    intervalMs,
    ...(options.diagnosisWindowMs !== undefined ? { windowMs: options.diagnosisWindowMs } : {}),
    ...(options.onCollectError !== undefined ? { onError: options.onCollectError } : {}),
    ...(options.flights !== undefined ? { flights: options.flights } : {}),
    ...(options.onFlights !== undefined ? { onFlights: options.onFlights } : {}),
    ...(options.select !== undefined ? { select: options.select } : {}),
  });
  // Made before the first collection: a canary URL it would refuse fails the start, not a run.
  let canary: CanarySchedule | null = null;
  try {
    canary = options.canary === undefined ? null : new CanarySchedule(metrics, options.canary);
  } catch (error) {
    await monitor.close();
    throw error;
  }
  await collector.start();
  canary?.start();
  for (const family of callerRegistry === null ? [] : families) callerRegistry!.registerMetric(family.metric);
  const serving = {
    exposition: () => collector.exposition,
    contentType: metrics.registry.contentType,
    version: metrics.version,
    health: () => {
      const { lastSuccessAt, lastError } = collector.status;
      const since = lastSuccessAt === null ? 'never' : `${((Date.now() - lastSuccessAt) / 1000).toFixed(1)} s ago`;
      const failing = lastError === null ? '' : `; the last collection failed: ${(lastError as Error).message ?? String(lastError)}`;
      return `ok: serving; last successful collection ${since}${failing}\n`;
    },
  };
  const handler = createMetricsHandler(serving);
  const server = createMetricsServer(serving);
  let closed = false;
  return {
    metrics: async () => collector.exposition.toString('utf8'),
    handler,
    registry: metrics.registry,
    collect: () => collector.collect(),
    listen: (port = DEFAULT_EXPORTER_PORT, host = '127.0.0.1') =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve(server.address() as AddressInfo);
        });
      }),
    close: async () => {
      if (closed) return;
      closed = true;
      await canary?.stop();
      await collector.stop();
      for (const family of callerRegistry === null ? [] : families) if (callerRegistry!.getSingleMetric(family.name) === family.metric) callerRegistry!.removeSingleMetric(family.name);
      await new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await monitor.close();
    },
  };
}
