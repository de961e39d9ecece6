/**
 * The recent samples a monitor keeps for the diagnosis and the sparklines: those within the
 * window's length before the newest, each older one without its reasons (figuresOnly: the rules
 * and the charts read figures), and past `maxSamples` the older half thinned to every other
 * sample, so recent samples keep full resolution, the window keeps its length and memory stays
 * bounded (120 samples of an hour is one every 30 s, finer than any pattern the rules look for).
 */
import type { LayeredSample } from '../layers/schema.js';
import { figuresOnly } from './figures-only.js';

export interface RollingWindowOptions {
  /** How far back from the newest sample the window reaches. */
  windowMs: number;
  maxSamples: number;
}

export class RollingWindow {
  readonly #windowMs: number;
  readonly #maxSamples: number;
  readonly #samples: LayeredSample[] = [];

  constructor(options: RollingWindowOptions) {
    this.#windowMs = options.windowMs;
    this.#maxSamples = options.maxSamples;
  }

  /** Oldest first; the newest keeps its reasons. */
  get samples(): readonly LayeredSample[] {
    return this.#samples;
  }

  push(sample: LayeredSample): void {
    const samples = this.#samples;
    if (samples.length > 0) samples[samples.length - 1] = figuresOnly(samples[samples.length - 1]!);
    samples.push(sample);
    const cutoff = Date.parse(sample.takenAt) - this.#windowMs;
    while (samples.length > 1 && Date.parse(samples[0]!.takenAt) < cutoff) samples.shift();
    if (samples.length > this.#maxSamples) {
      const older = samples.splice(0, samples.length >> 1);
      samples.unshift(...older.filter((_, i) => i % 2 === 0));
    }
  }
}
