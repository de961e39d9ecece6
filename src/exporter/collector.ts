/**
 * The exporter's sampling loop: every interval (the monitor's fixed rate), one layered sample
 * through the monitor (NVML's process-list call, at most once per device per interval whatever
 * the scrape rate), the diagnosis over the recent window (rate-limited by its own cost), and the
 * metric families refilled. Scrapes only read what the last collection left. A failed collection
 * (a wedged GPU: the probe rejects at its deadline and starts no second native call) keeps the
 * last good series and sets collect_success to 0. A collection that completes with a GPU NVML
 * cannot open or read (lost, or no longer listed) sets that GPU's device_up to 0, with why.
 */
import { diagnose } from '../diagnosis/diagnose.js';
import type { Finding } from '../diagnosis/finding-schema.js';
import type { LayeredSample } from '../layers/schema.js';
import { fixedRateTicks } from '../monitor/fixed-rate.js';
import type { Monitor } from '../monitor/monitor.js';
import { RollingWindow } from '../monitor/rolling-window.js';
import { readHostMemory } from '../sources/host-memory.js';
import type { FlightRecorder, FlightResult } from '../flight-recorder/flight-recorder.js';
import { OomEventDetector } from '../flight-recorder/oom-events.js';
import { deviceHealth } from './device-health.js';
import { fillSampleMetrics, type ExporterMetrics } from './exporter-metrics.js';

export interface CollectorOptions {
  intervalMs: number;
  /** The OOM flight recorder each sample goes through (none: no flights). */
  flights?: FlightRecorder | null;
  /** Told of each flight written and each one that could not be. */
  onFlights?: (result: FlightResult) => void;
  /** How far back the diagnosis looks (default one hour). */
  windowMs?: number;
  /** Told of each failed collection (the CLI prints it). */
  onError?: (error: unknown) => void;
  /** Narrows each sample to the GPUs and processes exported (default: all). */
  select?: (sample: LayeredSample) => LayeredSample;
}

/**
 * Samples kept for the diagnosis (the window thins its older half past this many): a sample of
 * 8 GPUs x 64 processes is ~0.6 MB of objects, ~0.3 MB as the window keeps it (figuresOnly).
 */
const MAX_WINDOW_SAMPLES = 120;

/**
 * The diagnosis runs on the event loop, and over 8 GPUs x 64 processes and a full window it took
 * ~250 ms (the exporter soak, 2026-11-26): every 5 s, that held up one scrape in twenty. So it
 * runs again only once this share of the time since the last one would pay for it (a 1 ms
 * diagnosis: every collection; 125 ms: once a minute), and the findings in between are the last
 * ones. The patterns it names take tens of minutes to show; a minute's delay loses nothing.
 */
const DIAGNOSIS_MAX_SHARE = 0.002;

export class Collector {
  readonly #monitor: Monitor;
  readonly #metrics: ExporterMetrics;
  readonly #options: CollectorOptions;
  readonly #window: RollingWindow;
  readonly #stop = new AbortController();
  #loop: Promise<void> = Promise.resolve();
  #running: Promise<void> | null = null;
  #lastError: unknown = null;
  #lastSuccessAt: number | null = null;
  #exposition: Buffer = Buffer.alloc(0);
  #findings: Finding[] = [];
  #lastDiagnosis = { at: Number.NEGATIVE_INFINITY, ms: 0 };
  /** Every GPU seen since the start, by UUID, with its last index: one no longer listed is down. */
  readonly #knownDevices = new Map<string, number>();
  /** Without a flight recorder, the events are still counted. */
  readonly #events = new OomEventDetector();

  constructor(monitor: Monitor, metrics: ExporterMetrics, options: CollectorOptions) {
    this.#monitor = monitor;
    this.#metrics = metrics;
    this.#options = options;
    this.#window = new RollingWindow({ windowMs: options.windowMs ?? 3_600_000, maxSamples: MAX_WINDOW_SAMPLES });
  }

  /** Collects now, then every interval from now on (fixed rate); resolves after the first. */
  start(): Promise<void> {
    const ticks = fixedRateTicks(this.#options.intervalMs, this.#stop.signal);
    const first = ticks.next().then(() => this.collect());
    this.#loop = first.then(async () => {
      for await (const _tick of ticks) await this.collect();
    });
    return first;
  }

  /** One collection; concurrent calls share it. Never rejects: failures go to the metrics. */
  collect(): Promise<void> {
    this.#running ??= this.#collect().finally(() => {
      this.#running = null;
    });
    return this.#running;
  }

  /**
   * The exposition of the last collection, rendered and encoded once when it ended: a scrape is
   * then a write of these bytes, however many scrapers there are.
   */
  get exposition(): Buffer {
    return this.#exposition;
  }

  get status(): { lastSuccessAt: number | null; lastError: unknown; samples: number } {
    return { lastSuccessAt: this.#lastSuccessAt, lastError: this.#lastError, samples: this.#window.samples.length };
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#loop;
    await this.#running;
  }

  async #collect(): Promise<void> {
    const started = performance.now();
    const m = this.#metrics;
    try {
      const [whole, hostMemory] = await Promise.all([this.#monitor.sample(), readHostMemory(this.#monitor.procRoot)]);
      const layered = this.#options.select?.(whole) ?? whole;
      this.#window.push(layered);
      fillSampleMetrics(m, layered, this.#diagnose(this.#window.samples), hostMemory, deviceHealth(layered, this.#knownDevices));
      this.#recordFlights(layered);
      m.collectSuccess.set(1);
      m.lastCollect.set(Date.parse(layered.takenAt) / 1000);
      this.#lastSuccessAt = Date.now();
      this.#lastError = null;
    } catch (error) {
      m.collectSuccess.set(0);
      this.#lastError = error;
      this.#options.onError?.(error);
    } finally {
      m.collectDuration.set((performance.now() - started) / 1000);
      this.#exposition = Buffer.from(await m.registry.metrics());
    }
  }

  /**
   * Counts the out-of-memory events the sample shows (each GPU's counters exist from its first
   * collection on, at 0, so that increase() sees the first event) and writes their flights.
   */
  #recordFlights(layered: LayeredSample): void {
    const counter = this.#metrics.oomEvents;
    for (const device of layered.devices) {
      // A GPU NVML cannot open has no identity to count under (gpu_layers_device_up says so).
      if (device.errors.device !== undefined) continue;
      for (const kind of ['oom-kill', 'cuda-oom']) counter.inc({ gpu: String(device.index), uuid: device.uuid ?? '', kind }, 0);
    }
    const flights = this.#options.flights ?? null;
    const result: FlightResult = flights === null ? { events: this.#events.next(layered), flights: [], failures: [] } : flights.observe(layered);
    for (const event of result.events) counter.inc({ gpu: String(event.deviceIndex), uuid: event.uuid ?? '', kind: event.kind });
    if (result.flights.length > 0 || result.failures.length > 0) this.#options.onFlights?.(result);
  }

  #diagnose(window: readonly LayeredSample[]): Finding[] {
    const now = performance.now();
    if (now - this.#lastDiagnosis.at >= this.#lastDiagnosis.ms / DIAGNOSIS_MAX_SHARE) {
      this.#findings = diagnose(window);
      this.#lastDiagnosis = { at: now, ms: performance.now() - now };
    }
    return this.#findings;
  }
}
