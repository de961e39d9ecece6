/**
 * probe.watch(): layered samples at a fixed rate, as an async iterator. Ticks are fixed to the
 * start (a slow sample does not push every later one back, a missed tick is skipped rather than
 * run in a burst), and the interval has a floor because NVML's process-list call holds a driver
 * lock. A failed sample ends the watch by throwing, unless `onError` takes it; then the watch
 * goes on at the next tick.
 */
import { GpuLayersError } from '../errors.js';
import { readLayers, type LayerOptions } from '../layers/read-layers.js';
import type { LayeredSample } from '../layers/schema.js';
import type { Sample } from '../sample/schema.js';
import { attachProcessCommands } from '../probe/process-commands.js';
import { MIN_WATCH_INTERVAL_MS } from './sampling-floor.js';

export interface WatchOptions extends LayerOptions {
  /** Milliseconds between samples, at least 250. */
  intervalMs: number;
  /** Ends the watch (the iterator returns) when aborted, also in the middle of a wait. */
  signal?: AbortSignal;
  /** Takes a failed sample's error; the watch then goes on. Without it the iterator throws. */
  onError?: (error: unknown) => void;
}

function validInterval(intervalMs: unknown): number {
  if (typeof intervalMs !== 'number' || !Number.isInteger(intervalMs) || intervalMs < MIN_WATCH_INTERVAL_MS) {
    throw new GpuLayersError(
      'INVALID_OPTIONS',
      `watch: intervalMs must be a whole number of milliseconds, at least ${MIN_WATCH_INTERVAL_MS} (NVML's process list holds a driver lock), not ${String(intervalMs)}`,
    );
  }
  return intervalMs;
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

const aborted = (signal: AbortSignal | undefined): boolean => signal?.aborted === true;

async function* ticks(takeSample: () => Promise<Sample>, options: WatchOptions, intervalMs: number): AsyncGenerator<LayeredSample, void, undefined> {
  const { signal, onError, intervalMs: _interval, ...layerOptions } = options;
  const start = Date.now();
  for (let tick = 0; !aborted(signal); ) {
    let layered: LayeredSample | null = null;
    try {
      const sample = await takeSample();
      // Commands from the /proc the layers are read from (the host's, mounted elsewhere).
      if (layerOptions.procRoot !== undefined) await attachProcessCommands(sample, layerOptions.procRoot);
      layered = await readLayers(sample, layerOptions);
    } catch (error) {
      // A closed probe ends the watch; anything else is the caller's to judge.
      if (error instanceof GpuLayersError && error.code === 'PROBE_CLOSED') return;
      if (onError === undefined) throw error;
      onError(error);
    }
    if (layered !== null && !aborted(signal)) yield layered;
    tick = Math.max(tick + 1, Math.ceil((Date.now() - start) / intervalMs));
    await pause(start + tick * intervalMs - Date.now(), signal);
  }
}

/** Validates at once (a bad interval throws here, not at the first next()). */
export function watchLayers(takeSample: () => Promise<Sample>, options: WatchOptions): AsyncGenerator<LayeredSample, void, undefined> {
  return ticks(takeSample, options, validInterval(options?.intervalMs));
}
