/**
 * The exporter's sampling loop: every interval, one driver sample (NVML's process-list call, at
 * most once per device per interval whatever the scrape rate), the layers, the diagnosis over
 * the recent window (rate-limited by its own cost), and the metric families refilled. Scrapes
 * only read what the last collection left. A failed collection (a wedged GPU: the probe rejects at its deadline and
 * starts no second native call) keeps the last good series and sets collect_success to 0.
 */
import { diagnose } from '../diagnosis/diagnose.js';
import type { Finding } from '../diagnosis/finding-schema.js';
import { figuresOnly } from '../monitor/figures-only.js';
import { readLayers, type LayerOptions } from '../layers/read-layers.js';
import type { LayeredSample } from '../layers/schema.js';
import type { Probe } from '../probe/probe.js';
import { attachProcessCommands } from '../probe/process-commands.js';
import { readHostMemory } from '../sources/host-memory.js';
import { fillSampleMetrics, type ExporterMetrics } from './exporter-metrics.js';

export interface CollectorOptions {
  intervalMs: number;
  /** How far back the diagnosis looks (default one hour). */
  windowMs?: number;
  layers?: LayerOptions;
  /** Told of each failed collection (the CLI prints it). */
  onError?: (error: unknown) => void;
}

/**
 * Samples kept for the diagnosis: past this many, the older half is thinned to every other
 * sample. Recent samples keep full resolution, the window keeps its length (120 samples of an
 * hour is one every 30 s, finer than any pattern the rules look for), and memory stays bounded:
 * a sample of 8 GPUs x 64 processes is ~0.6 MB of objects, ~0.3 MB as the window keeps it
 * (figuresOnly: without the reasons, which the diagnosis does not read).
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

function thin(window: LayeredSample[]): void {
  const older = window.splice(0, window.length >> 1);
  window.unshift(...older.filter((_, i) => i % 2 === 0));
}

export class Collector {
  readonly #probe: Probe;
  readonly #metrics: ExporterMetrics;
  readonly #options: CollectorOptions;
  readonly #window: LayeredSample[] = [];
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #stopped = false;
  #lastError: unknown = null;
  #lastSuccessAt: number | null = null;
  #exposition: Buffer = Buffer.alloc(0);
  #findings: Finding[] = [];
  #lastDiagnosis = { at: Number.NEGATIVE_INFINITY, ms: 0 };

  constructor(probe: Probe, metrics: ExporterMetrics, options: CollectorOptions) {
    this.#probe = probe;
    this.#metrics = metrics;
    this.#options = options;
  }

  /** Collects now, then every interval from now on (fixed rate). */
  start(): Promise<void> {
    const first = this.collect();
    const started = Date.now();
    const schedule = (tick: number): void => {
      if (this.#stopped) return;
      const next = Math.max(tick + 1, Math.ceil((Date.now() - started) / this.#options.intervalMs));
      this.#timer = setTimeout(() => {
        void this.collect().then(() => schedule(next));
      }, started + next * this.#options.intervalMs - Date.now());
    };
    void first.then(() => schedule(0));
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
    return { lastSuccessAt: this.#lastSuccessAt, lastError: this.#lastError, samples: this.#window.length };
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#running;
  }

  async #collect(): Promise<void> {
    const started = performance.now();
    const m = this.#metrics;
    try {
      const procRoot = this.#options.layers?.procRoot ?? '/proc';
      const [sample, hostMemory] = await Promise.all([this.#probe.sample(), readHostMemory(procRoot)]);
      await attachProcessCommands(sample, procRoot);
      const layered = await readLayers(sample, this.#options.layers ?? {});
      const window = this.#window;
      window.push(figuresOnly(layered));
      const cutoff = Date.parse(layered.takenAt) - (this.#options.windowMs ?? 3_600_000);
      while (window.length > 1 && Date.parse(window[0]!.takenAt) < cutoff) window.shift();
      if (window.length > MAX_WINDOW_SAMPLES) thin(window);
      fillSampleMetrics(m, layered, this.#diagnose(window), hostMemory);
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

  #diagnose(window: LayeredSample[]): Finding[] {
    const now = performance.now();
    if (now - this.#lastDiagnosis.at >= this.#lastDiagnosis.ms / DIAGNOSIS_MAX_SHARE) {
      this.#findings = diagnose(window);
      this.#lastDiagnosis = { at: now, ms: performance.now() - now };
    }
    return this.#findings;
  }
}
