/**
 * How much of a series' growth the load explains: a least-squares fit of the series on time and
 * the load together, over time buckets both share. The time term is what the load leaves
 * unexplained: a leak grows with time whatever the load; activations move with the requests
 * running, and a cache with the most requests running so far.
 */
import { requestsRunning } from './fields.js';
import { seriesFrom } from './growth.js';
import type { Point, ProcessHistory } from './process-history.js';
import { bucketed, type Rise } from './series-shape.js';
import { THRESHOLDS } from './thresholds.js';
import { within } from './trend.js';

const HOUR_MS = 3_600_000;

/** Solves m x = b by Gaussian elimination with partial pivoting; null when m is singular. */
function solve(m: number[][], b: number[]): number[] | null {
  const n = b.length;
  const a = m.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++) if (Math.abs(a[row]![col]!) > Math.abs(a[pivot]![col]!)) pivot = row;
    if (Math.abs(a[pivot]![col]!) < 1e-9) return null;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    for (let row = col + 1; row < n; row++) {
      const f = a[row]![col]! / a[col]![col]!;
      for (let k = col; k <= n; k++) a[row]![k]! -= f * a[col]![k]!;
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let row = n - 1; row >= 0; row--) {
    let sum = a[row]![n]!;
    for (let k = row + 1; k < n; k++) sum -= a[row]![k]! * x[k]!;
    x[row] = sum / a[row]![row]!;
  }
  return x;
}

/**
 * The growth per hour that time alone carries once the load is accounted for: the coefficient of
 * t in series ~ a + b t + c running (+ d peak, the most requests running so far, with `peak`),
 * over the time buckets both series share.
 */
function unexplainedPerHour(series: readonly Point[], running: readonly Point[], peak: boolean): number | null {
  const width = bucketed(series, 0).widthMs;
  const t0 = series[0]!.t;
  const a = bucketed(series, 0, width).points;
  const r = bucketed(running, 0, width).points;
  const load = new Map(r.map((p) => [Math.floor((p.t - t0) / width), p.v]));
  let most = -Infinity;
  const peaks = new Map(r.map((p) => [Math.floor((p.t - t0) / width), (most = Math.max(most, p.v))]));
  // Bytes taken from the first bucket's level: the same fit, without sums of 1e21.
  const rows = a.flatMap((p) => {
    const key = Math.floor((p.t - t0) / width);
    const l = load.get(key);
    if (l === undefined) return [];
    return [[1, (p.t - t0) / HOUR_MS, l, ...(peak ? [peaks.get(key)!] : []), p.v - a[0]!.v]];
  });
  const k = peak ? 4 : 3;
  if (rows.length < THRESHOLDS.minSamples + k) return null;
  const m = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => rows.reduce((sum, row) => sum + row[i]! * row[j]!, 0)));
  const b = Array.from({ length: k }, (_, i) => rows.reduce((sum, row) => sum + row[i]! * row[k]!, 0));
  return solve(m, b)?.[1] ?? null;
}

export interface LoadFit {
  /** Whether requests running are known over most of the span. */
  known: boolean;
  running: Point[];
  /** The growth over the rise that time alone carries (the whole rise when the load is unknown). */
  unexplainedBytes: number;
}

/**
 * `peak`: the series holds memory the busiest moment so far needed (a caching allocator keeps
 * what it reserved), so the most requests running so far is a regressor too.
 */
export function loadExplains(history: ProcessHistory, from: number, span: readonly Point[], rise: Rise, peak = false): LoadFit {
  const running = within(seriesFrom(history, from, requestsRunning), rise);
  const known = running.length >= THRESHOLDS.knownShare * span.length;
  if (!known) return { known, running, unexplainedBytes: rise.rise };
  const perHour = unexplainedPerHour(span, running, peak);
  return { known, running, unexplainedBytes: perHour === null ? 0 : perHour * ((rise.to - rise.from) / HOUR_MS) };
}
