/**
 * The exporter's default port and collection interval, apart from create-exporter.ts so the
 * library's entry can export them without loading prom-client and the monitor.
 */
export const DEFAULT_EXPORTER_PORT = 9843;
export const DEFAULT_EXPORTER_INTERVAL_MS = 5000;
