/**
 * The shortest interval between samples that watch(), record and the exporter accept: NVML's
 * process-list call holds a driver lock, so sampling faster would slow the GPU's own clients.
 * Apart from watch.ts so flag parsing can name it without loading the layer readers.
 */
export const MIN_WATCH_INTERVAL_MS = 250;
