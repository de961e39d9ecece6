/**
 * createExporter(): the Prometheus exporter as a library. It opens a monitor, collects on its
 * own interval (Collector) and serves the registry over HTTP when asked to listen. `gpu-layers
 * serve` is this plus flags and signals.
 */
import type { AddressInfo } from 'node:net';

import type { FlightRecorder, FlightResult } from '../flight-recorder/flight-recorder.js';
import type { LayerOptions } from '../layers/read-layers.js';
import { openMonitor } from '../monitor/monitor.js';
import { checkSamplingInterval } from '../monitor/sampling-floor.js';
import type { ProbeOptions } from '../probe/options.js';
import { CanarySchedule, type CanaryScheduleOptions } from './canary-schedule.js';
import { Collector } from './collector.js';
import { createExporterMetrics } from './exporter-metrics.js';
import { createMetricsServer } from './metrics-server.js';

export const DEFAULT_EXPORTER_PORT = 9843;
export const DEFAULT_EXPORTER_INTERVAL_MS = 5000;

export interface ExporterOptions {
  /** Between collections (default 5000, at least 250). */
  intervalMs?: number;
  /** How far back the diagnosis behind gpu_layers_finding looks (default one hour). */
  diagnosisWindowMs?: number;
  probe?: ProbeOptions;
  layers?: LayerOptions;
  onCollectError?: (error: unknown) => void;
  /** The OOM flight recorder each sample goes through; none: no flights. */
  flights?: FlightRecorder | null;
  onFlights?: (result: FlightResult) => void;
  /** The sequence-consistency canary on a schedule (off without it). */
  canary?: CanaryScheduleOptions;
}

export interface Exporter {
  /** The exposition text of the last collection (what GET /metrics returns). */
  metrics(): Promise<string>;
  /** Collects now (a scrape never does). */
  collect(): Promise<void>;
  /** Serves /metrics and /healthz; resolves with the address bound. */
  listen(port?: number, host?: string): Promise<AddressInfo>;
  close(): Promise<void>;
}

export async function createExporter(options: ExporterOptions = {}): Promise<Exporter> {
  const intervalMs = checkSamplingInterval(options.intervalMs ?? DEFAULT_EXPORTER_INTERVAL_MS, 'exporter');
  const monitor = await openMonitor({ probe: options.probe ?? {}, layers: options.layers ?? {} });
  const metrics = createExporterMetrics();
  const collector = new Collector(monitor, metrics, {
    intervalMs,
    ...(options.diagnosisWindowMs !== undefined ? { windowMs: options.diagnosisWindowMs } : {}),
    ...(options.onCollectError !== undefined ? { onError: options.onCollectError } : {}),
    ...(options.flights !== undefined ? { flights: options.flights } : {}),
    ...(options.onFlights !== undefined ? { onFlights: options.onFlights } : {}),
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
  const server = createMetricsServer({
    exposition: () => collector.exposition,
    contentType: metrics.registry.contentType,
    health: () => {
      const { lastSuccessAt, lastError } = collector.status;
      const since = lastSuccessAt === null ? 'never' : `${((Date.now() - lastSuccessAt) / 1000).toFixed(1)} s ago`;
      const failing = lastError === null ? '' : `; the last collection failed: ${(lastError as Error).message ?? String(lastError)}`;
      return `ok: serving; last successful collection ${since}${failing}\n`;
    },
  });
  let closed = false;
  return {
    metrics: async () => collector.exposition.toString('utf8'),
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
      await new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await monitor.close();
    },
  };
}
