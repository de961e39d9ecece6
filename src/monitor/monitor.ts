/**
 * openMonitor() and the Monitor it returns: the layered view of a host over time. A monitor owns
 * a probe (the driver layer), the /proc root it reads (this host's, or the host's mounted
 * elsewhere in a container), the process command lines read from it, what it keeps between
 * samples (the vLLM log's follower, each vLLM server's counters for its rates, the last sample's
 * GPU processes to tell which are gone and whether the OOM killer took them), and the
 * fixed-rate loop with its floor. `watch`, `record`, the exporter, `demo --live` and the incident recorder all sample
 * through one.
 */
import { GpuLayersError } from '../errors.js';
import { readLayers, type LayerOptions, type LayerReaders } from '../layers/read-layers.js';
import type { LayeredSample } from '../layers/schema.js';
import type { ProbeOptions } from '../probe/options.js';
import { openProbe, type Probe } from '../probe/probe.js';
import { attachProcessCommands } from '../probe/process-commands.js';
import { fixedRateTicks } from './fixed-rate.js';
import { ExitTracker } from './process-exits.js';
import { checkSamplingInterval } from './sampling-floor.js';

export interface MonitorOptions {
  /** How the driver layer is opened (libraries, deadline, addon). */
  probe?: ProbeOptions;
  /** The layer sources read at every sample; `procRoot` is also where command lines come from. */
  layers?: LayerOptions;
}

export interface WatchOptions {
  /** Milliseconds between samples, at least 250. */
  intervalMs: number;
  /** Ends the watch (the iterator returns) when aborted, also in the middle of a wait. */
  signal?: AbortSignal;
  /** Takes a failed sample's error; the watch then goes on. Without it the iterator throws. */
  onError?: (error: unknown) => void;
}

export class Monitor {
  readonly probe: Probe;
  /** The /proc the layers and command lines are read from. */
  readonly procRoot: string;
  readonly #layers: LayerOptions;
  readonly #readers: LayerReaders = {};
  readonly #exits: ExitTracker;

  /** @internal Use openMonitor(). */
  constructor(probe: Probe, layers: LayerOptions) {
    this.probe = probe;
    this.#layers = layers;
    this.procRoot = layers.procRoot ?? '/proc';
    this.#exits = new ExitTracker(this.procRoot, layers.cgroupRoot ?? '/sys/fs/cgroup');
  }

  /**
   * One driver sample with every layer joined, its processes named from this monitor's /proc,
   * and the GPU processes gone since this monitor's previous sample (with the OOM killer's count).
   */
  async sample(): Promise<LayeredSample> {
    const sample = await this.probe.sample();
    await attachProcessCommands(sample, this.procRoot);
    const layered = await readLayers(sample, this.#layers, this.#readers);
    return { ...layered, exits: await this.#exits.update(layered) };
  }

  /**
   * Layered samples every `intervalMs` (at least 250: validated here, not at the first next())
   * until the loop breaks, `signal` aborts or the monitor closes; `onError` keeps it going past a
   * failed sample.
   */
  watch(options: WatchOptions): AsyncGenerator<LayeredSample, void, undefined> {
    return this.#watch(checkSamplingInterval(options?.intervalMs, 'watch'), options);
  }

  close(): Promise<void> {
    return this.probe.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  async *#watch(intervalMs: number, { signal, onError }: WatchOptions): AsyncGenerator<LayeredSample, void, undefined> {
    for await (const _tick of fixedRateTicks(intervalMs, signal)) {
      let layered: LayeredSample | null = null;
      try {
        layered = await this.sample();
      } catch (error) {
        // A closed monitor ends the watch; anything else is the caller's to judge.
        if (error instanceof GpuLayersError && error.code === 'PROBE_CLOSED') return;
        if (onError === undefined) throw error;
        onError(error);
      }
      if (layered !== null && signal?.aborted !== true) yield layered;
    }
  }
}

/**
 * Opens the probe (NVML, and CUDA context-free) for a monitor. Throws what openProbe() throws
 * when the driver layer cannot be read. Command lines come from the monitor's /proc, so the
 * probe is told not to read them itself.
 */
export async function openMonitor(options: MonitorOptions = {}): Promise<Monitor> {
  const probe = await openProbe({ ...options.probe, processCommands: false });
  return new Monitor(probe, options.layers ?? {});
}
