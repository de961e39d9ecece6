/**
 * The exporter soak's trend (scripts/bench/linear-trend.js): exact on a line, and standard errors
 * checked against the slopes' actual spread over many simulated runs with known noise.
 */
import { describe, expect, it } from 'vitest';

import { linearTrend } from '../../scripts/bench/linear-trend.js';

const MINUTE = 60_000;
const OPTIONS = { perMs: 10 * MINUTE, bandwidthMs: 5 * MINUTE };

/** Deterministic standard normal draws (xorshift32 + Box-Muller). */
function normals(seed: number): () => number {
  let state = seed >>> 0 || 1;
  const uniform = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return ((state >>> 0) + 0.5) / 2 ** 32;
  };
  return () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
}

/** Readings every 30 s from minute 12 to minute 82, as the soak's steady state. */
const TIMES = Array.from({ length: 141 }, (_, i) => 12 * MINUTE + i * 30_000);

function spreadOfSlopes(runs: number, noise: (t: number, run: number) => number): { slopeMean: number; slopeSd: number; textbook: number; robust: number } {
  const slopes: number[] = [];
  let textbook = 0;
  let robust = 0;
  for (let run = 0; run < runs; run++) {
    const fit = linearTrend(TIMES.map((t) => ({ t, y: 100e6 + noise(t, run) })), OPTIONS);
    slopes.push(fit.slope);
    textbook += fit.textbookStandardError / runs;
    robust += fit.robustStandardError / runs;
    expect(fit.standardError).toBe(Math.max(fit.textbookStandardError, fit.robustStandardError));
  }
  const slopeMean = slopes.reduce((a, b) => a + b) / runs;
  const slopeSd = Math.sqrt(slopes.reduce((sum, s) => sum + (s - slopeMean) ** 2, 0) / (runs - 1));
  return { slopeMean, slopeSd, textbook, robust };
}

describe('linearTrend', () => {
  it('finds the slope of a line exactly, with no error', () => {
    const fit = linearTrend(TIMES.map((t) => ({ t, y: 5e6 + (t / (10 * MINUTE)) * 1.5e6 })), OPTIONS);
    expect(fit.slope).toBeCloseTo(1.5e6, 3);
    expect(fit.textbookStandardError).toBeLessThan(1e-3);
    expect(fit.robustStandardError).toBeLessThan(1e-3);
  });

  it('has no figures for fewer than three points or for points at one moment', () => {
    expect(linearTrend([{ t: 0, y: 1 }, { t: 1, y: 2 }], OPTIONS).slope).toBeNaN();
    const sameMoment = linearTrend([1, 2, 3].map((y) => ({ t: 7, y })), OPTIONS);
    expect(sameMoment.slope).toBeNaN();
    expect(sameMoment.standardError).toBeNaN();
  });

  it('independent noise: the textbook error matches the slopes\' spread and the larger of the two is never below it', () => {
    const draw = normals(7);
    const { slopeMean, slopeSd, textbook, robust } = spreadOfSlopes(400, () => 3e6 * draw());
    expect(Math.abs(slopeMean)).toBeLessThan(3 * (slopeSd / Math.sqrt(400)));
    expect(textbook / slopeSd).toBeGreaterThan(0.85);
    expect(textbook / slopeSd).toBeLessThan(1.15);
    expect(robust).toBeLessThan(textbook);
    // Newey-West's known downward bias with a bandwidth of 10 readings out of 141.
    expect(robust / slopeSd).toBeGreaterThan(0.7);
    expect(robust / slopeSd).toBeLessThan(1.05);
  });

  it('noise correlated over a minute: the textbook error is half the spread of the slopes, the robust one nearer', () => {
    const draw = normals(11);
    const step = Math.exp(-0.5); // 30 s between readings, 1 min time constant
    let state = 0;
    const { slopeSd, textbook, robust } = spreadOfSlopes(400, (t) => {
      state = t === TIMES[0] ? 3e6 * draw() : state * step + 3e6 * Math.sqrt(1 - step ** 2) * draw();
      return state;
    });
    expect(textbook / slopeSd).toBeLessThan(0.6);
    // Closer, and still low: Bartlett weights and a 70-minute series cannot see all of it.
    expect(robust / textbook).toBeGreaterThan(1.3);
    expect(robust / slopeSd).toBeGreaterThan(0.65);
    expect(robust / slopeSd).toBeLessThan(1);
  });
});
