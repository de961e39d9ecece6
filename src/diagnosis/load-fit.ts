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

/** Solves m x = b by Gaussian elimination with partial pivoting; null when m is (nearly) singular. */
function solve(m: number[][], b: number[]): number[] | null {
  const n = b.length;
  const a = m.map((row, i) => [...row, b[i]!]);
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let row = col + 1; row < n; row++) if (Math.abs(a[row]![col]!) > Math.abs(a[pivot]![col]!)) pivot = row;
    // The columns are standardised (each one's squares sum to the row count): a pivot this small
    // next to that is a regressor that is a combination of the others.
    if (Math.abs(a[pivot]![col]!) < 1e-9 * Math.max(1, Math.abs(m[col]![col]!))) return null;
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
 * over the time buckets both series share. A load regressor that does not move over them (a
 * constant batch, a peak reached before) explains nothing and is left out. The columns are
 * centred and scaled before the least-squares solve, so bytes, hours and request counts do not
 * meet in one matrix. null when time cannot be told apart from the load (too few buckets, or the
 * load moving in step with time).
 */
function unexplainedPerHour(series: readonly Point[], running: readonly Point[], peak: boolean): number | null {
  const width = bucketed(series, 0).widthMs;
  const t0 = series[0]!.t;
  const buckets = bucketed(series, 0, width).points;
  const r = bucketed(running, 0, width).points;
  const load = new Map(r.map((p) => [Math.floor((p.t - t0) / width), p.v]));
  let most = -Infinity;
  const peaks = new Map(r.map((p) => [Math.floor((p.t - t0) / width), (most = Math.max(most, p.v))]));
  const time: number[] = [];
  const regressors: number[][] = [[], ...(peak ? [[]] : [])];
  const y: number[] = [];
  for (const p of buckets) {
    const key = Math.floor((p.t - t0) / width);
    const l = load.get(key);
    if (l === undefined) continue;
    time.push((p.t - t0) / HOUR_MS);
    regressors[0]!.push(l);
    if (peak) regressors[1]!.push(peaks.get(key)!);
    y.push(p.v);
  }
  const n = y.length;
  if (n < THRESHOLDS.minSamples + 1 + regressors.length) return null;
  const standardised = (column: number[]): { values: number[]; scale: number } | null => {
    const mean = column.reduce((a, b) => a + b, 0) / n;
    const scale = Math.sqrt(column.reduce((sum, v) => sum + (v - mean) ** 2, 0) / n);
    return scale > 0 ? { values: column.map((v) => (v - mean) / scale), scale } : null;
  };
  const t = standardised(time);
  if (t === null) return null;
  const columns = [t.values, ...regressors.map(standardised).flatMap((c) => (c === null ? [] : [c.values]))];
  const yMean = y.reduce((a, b) => a + b, 0) / n;
  const k = columns.length;
  const m = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => columns[i]!.reduce((sum, v, row) => sum + v * columns[j]![row]!, 0)));
  const b = columns.map((column) => column.reduce((sum, v, row) => sum + v * (y[row]! - yMean), 0));
  const solution = solve(m, b);
  return solution === null ? null : solution[0]! / t.scale;
}

export interface LoadFit {
  /** Whether the load's part could be measured: requests running known over most of the span,
   * and not moving in step with time. */
  known: boolean;
  /** Why not, when it could not, in words for a summary. */
  unknownBecause: string | null;
  running: Point[];
  /** The growth over the rise that time alone carries (the whole rise when the load's part is unknown). */
  unexplainedBytes: number;
}

/**
 * `peak`: the series holds memory the busiest moment so far needed (a caching allocator keeps
 * what it reserved), so the most requests running so far is a regressor too.
 */
export function loadExplains(history: ProcessHistory, from: number, span: readonly Point[], rise: Rise, peak = false): LoadFit {
  const running = within(seriesFrom(history, from, requestsRunning), rise);
  if (running.length < THRESHOLDS.knownShare * span.length) return { known: false, unknownBecause: 'no request figures to weigh the load against', running, unexplainedBytes: rise.rise };
  const perHour = unexplainedPerHour(span, running, peak);
  if (perHour === null) return { known: false, unknownBecause: 'the requests running moved in step with time, so their part cannot be told', running, unexplainedBytes: rise.rise };
  return { known: true, unknownBecause: null, running, unexplainedBytes: perHour * ((rise.to - rise.from) / HOUR_MS) };
}
