/**
 * The shortest interval between samples that the monitor's loop accepts (watch, record, the
 * exporter): NVML's process-list call holds a driver lock, so sampling faster would slow the
 * GPU's own clients. Apart from monitor.ts so flag parsing can check it without loading the
 * layer readers.
 */
import { GpuLayersError } from '../errors.js';

export const MIN_WATCH_INTERVAL_MS = 250;

/** `intervalMs` when it is a whole number of milliseconds at or above the floor; else INVALID_OPTIONS. */
export function checkSamplingInterval(intervalMs: unknown, what: string): number {
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < MIN_WATCH_INTERVAL_MS) {
    throw new GpuLayersError(
      'INVALID_OPTIONS',
      `${what}: intervalMs must be a whole number of milliseconds, at least ${MIN_WATCH_INTERVAL_MS} (NVML's process list holds a driver lock), not ${String(intervalMs)}`,
    );
  }
  return intervalMs;
}
