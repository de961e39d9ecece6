/**
 * The shape of one series over a window: a least-squares line (slope per hour and R²), the
 * values at both ends, how many times it rose, and whether its whole change is one step with
 * flat stretches on both sides. Pure arithmetic; the rules decide what a shape means.
 */
import type { Point } from './process-history.js';

const HOUR_MS = 3_600_000;

export interface Trend {
  /** Median of the first few values (one outlier does not move it). */
  first: number;
  last: number;
  change: number;
  slopePerHour: number;
  /** R² of the line, 0..1; null when the series is constant. */
  fit: number | null;
  samples: number;
  /** Times the series rose by more than `noise` from one reading to the next. */
  rises: number;
  /** Share of consecutive changes that are not a fall beyond `noise`, 0..1. */
  monotonic: number;
  /** When the first rise beyond `noise` happened (the first reading's time if none). */
  firstRiseAt: number;
}

export interface Step {
  /** Time of the reading after the step. */
  at: number;
  rise: number;
  /** Readings before and after the step. */
  before: number;
  after: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export function trend(points: readonly Point[], noise: number): Trend {
  const n = points.length;
  const ends = Math.max(1, Math.min(3, Math.floor(n / 4)));
  const first = median(points.slice(0, ends).map((p) => p.v));
  const last = median(points.slice(n - ends).map((p) => p.v));
  const t0 = points[0]?.t ?? 0;
  let meanT = 0;
  let meanV = 0;
  for (const p of points) {
    meanT += (p.t - t0) / n;
    meanV += p.v / n;
  }
  let sTT = 0;
  let sTV = 0;
  let sVV = 0;
  for (const p of points) {
    const dt = p.t - t0 - meanT;
    const dv = p.v - meanV;
    sTT += dt * dt;
    sTV += dt * dv;
    sVV += dv * dv;
  }
  const slope = sTT === 0 ? 0 : sTV / sTT;
  const fit = sVV === 0 || sTT === 0 ? null : (sTV * sTV) / (sTT * sVV);
  let rises = 0;
  let notFalling = 0;
  let firstRiseAt: number | null = null;
  for (let i = 1; i < n; i++) {
    const d = points[i]!.v - points[i - 1]!.v;
    if (d > noise) {
      rises++;
      firstRiseAt ??= points[i - 1]!.t;
    }
    if (d >= -noise) notFalling++;
  }
  return {
    first,
    last,
    change: last - first,
    slopePerHour: slope * HOUR_MS,
    fit,
    samples: n,
    rises,
    monotonic: n > 1 ? notFalling / (n - 1) : 1,
    firstRiseAt: firstRiseAt ?? t0,
  };
}

function range(points: readonly Point[]): number {
  let min = Infinity;
  let max = -Infinity;
  for (const p of points) {
    min = Math.min(min, p.v);
    max = Math.max(max, p.v);
  }
  return points.length === 0 ? 0 : max - min;
}

/**
 * The series' change as one step: the largest rise over at most three consecutive readings (a
 * step can straddle a sample), with at least `minBefore` readings before and `minAfter` after,
 * each side varying by under a tenth of the step. null when the series is not shaped so.
 */
export function singleStep(points: readonly Point[], minRise: number, minBefore = 2, minAfter = 3): Step | null {
  let best: { start: number; end: number; rise: number } | null = null;
  for (let start = 0; start < points.length - 1; start++) {
    for (let end = start + 1; end <= Math.min(start + 3, points.length - 1); end++) {
      const rise = points[end]!.v - points[start]!.v;
      if (best === null || rise > best.rise) best = { start, end, rise };
    }
  }
  if (best === null || best.rise < minRise) return null;
  const before = points.slice(0, best.start + 1);
  const after = points.slice(best.end);
  if (before.length < minBefore || after.length < minAfter) return null;
  if (range(before) > best.rise / 10 || range(after) > best.rise / 10) return null;
  return { at: points[best.end]!.t, rise: best.rise, before: before.length, after: after.length };
}
