/**
 * The sequence-consistency canary on a schedule, for `serve` (opt-in, off by default): one run at
 * a time, the first a minute after the start, then every `everyMs` (at least MIN_EVERY_MS: each
 * run sends up to its request budget of real requests to a production server), its result in
 * the exporter's canary families: whether it completed, when, the divergences by kind, a
 * finding series while a mismatch stands, and the requests sent. A failed run (unreachable,
 * timeouts, bad answers) sets success to 0 and keeps the last findings: a server that stopped
 * answering has not been shown consistent since.
 */
import { GpuLayersError } from '../errors.js';
import { urlText } from '../canary/json-post.js';
import { apiBase } from '../canary/openai-client.js';
import { runCanary } from '../canary/run-canary.js';
import type { CanaryOptions } from '../canary/canary-options.js';
import type { CanaryResult } from '../canary/canary-schema.js';
import type { ExporterMetrics } from './exporter-metrics.js';

/** Runs further apart than this only: a canary is real load on a production server. */
export const MIN_EVERY_MS = 10 * 60_000;
/** The first run waits this long after the start: the exporter's first samples come first. */
const FIRST_RUN_DELAY_MS = 60_000;

export interface CanaryScheduleOptions {
  canary: Omit<CanaryOptions, 'signal' | 'onProgress'>;
  everyMs: number;
  /** Told of each run's result, and of each run that failed. */
  onResult?: (result: CanaryResult) => void;
  onError?: (error: unknown) => void;
  /** For tests: the first run's delay (default one minute). */
  firstRunDelayMs?: number;
}

export class CanarySchedule {
  readonly #metrics: ExporterMetrics;
  readonly #options: CanaryScheduleOptions;
  readonly #stop = new AbortController();
  /** The series' labels: the API base as the canary reports it (no query, no credentials). */
  readonly #labels: { endpoint: string; model: string };
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;

  /** Throws INVALID_OPTIONS for a URL the canary would refuse, before anything runs. */
  constructor(metrics: ExporterMetrics, options: CanaryScheduleOptions) {
    if (!(options.everyMs >= MIN_EVERY_MS)) throw new GpuLayersError('INVALID_OPTIONS', `the canary runs at most every ${MIN_EVERY_MS / 60_000} minutes (it is real load on the server)`);
    this.#metrics = metrics;
    this.#options = options;
    this.#labels = { endpoint: urlText(apiBase(options.canary.url)), model: options.canary.model };
  }

  start(): void {
    this.#schedule(this.#options.firstRunDelayMs ?? FIRST_RUN_DELAY_MS);
  }

  /** Stops the schedule and aborts a run in flight. */
  async stop(): Promise<void> {
    this.#stop.abort(new Error('the exporter is closing'));
    if (this.#timer !== null) clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(ms: number): void {
    if (this.#stop.signal.aborted) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#run().finally(() => {
        this.#running = null;
        this.#schedule(this.#options.everyMs);
      });
    }, ms);
    // The schedule never keeps the process alive on its own.
    this.#timer.unref();
  }

  async #run(): Promise<void> {
    const labels = this.#labels;
    const m = this.#metrics;
    try {
      const result = await runCanary({ ...this.#options.canary, signal: this.#stop.signal });
      const labelled = labels;
      m.canarySuccess.set(labelled, 1);
      m.canaryLastRun.set(labelled, Date.parse(result.finishedAt) / 1000);
      m.canaryDivergences.set({ ...labelled, kind: 'noise' }, result.counts.noise);
      m.canaryDivergences.set({ ...labelled, kind: 'mismatch' }, result.counts.mismatch);
      m.canaryRequests.inc(labelled, result.load.requestsSent);
      m.canaryFinding.reset();
      for (const severity of new Set(result.findings.map((f) => f.severity))) m.canaryFinding.set({ ...labelled, severity }, 1);
      this.#options.onResult?.(result);
    } catch (error) {
      if (this.#stop.signal.aborted) return;
      m.canarySuccess.set(labels, 0);
      m.canaryLastRun.set(labels, Date.now() / 1000);
      this.#options.onError?.(error);
    }
  }
}
