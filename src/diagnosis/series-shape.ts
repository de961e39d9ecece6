/**
 * The shape of one series over time, judged the same whatever the sampling interval:
 *
 * - readings are gathered into time buckets (the median of each; at most MAX_BUCKETS over the
 *   window), so 5 s and 60 s recordings of the same host give nearly the same curve;
 * - the noise is estimated from the series itself: 1.4826 x the median absolute deviation of
 *   successive bucket differences, / sqrt 2 (a robust standard deviation of one bucket; a trend
 *   shifts every difference alike and drops out, steps are outliers);
 * - the curve is cut into straight pieces by optimal partitioning, the exact dynamic program
 *   that PELT prunes (Jackson et al. 2005; Killick, Fearnhead & Eckley 2012, JASA 107:1590),
 *   with a least-squares line per piece and a BIC-like penalty of 3 sigma^2 ln n per piece (a
 *   change point, a slope and a level): where growth starts, and where it stops;
 * - slopes are Theil-Sen (the median of pairwise slopes; Sen 1968), which one outlier cannot move.
 *
 * Pure arithmetic: the rules decide what a shape means.
 */
import type { Point } from './process-history.js';
import { THRESHOLDS } from './thresholds.js';

const HOUR_MS = 3_600_000;
/** Enough to see an hour-long plateau in three days (18-minute buckets), few enough to partition exactly. */
export const MAX_BUCKETS = 240;
/** A piece is a line through at least this many buckets (two make any line fit exactly). */
const MIN_PIECE = 3;

export interface Buckets {
  points: Point[];
  /** Readings in each bucket. */
  counts: number[];
  widthMs: number;
  /** Robust standard deviation of one bucket's value around the curve (at least `floor`). */
  sigma: number;
}

/** The k-th smallest of `a` (0-based), reordering it: Hoare's selection, linear on average. */
function select(a: Float64Array, k: number): number {
  let low = 0;
  let high = a.length - 1;
  while (low < high) {
    const pivot = a[(low + high) >> 1]!;
    let i = low;
    let j = high;
    while (i <= j) {
      while (a[i]! < pivot) i++;
      while (a[j]! > pivot) j--;
      if (i <= j) {
        const t = a[i]!;
        a[i] = a[j]!;
        a[j] = t;
        i++;
        j--;
      }
    }
    if (k <= j) high = j;
    else if (k >= i) low = i;
    else return a[k]!;
  }
  return a[k]!;
}

export function median(values: readonly number[] | Float64Array): number {
  const n = values.length;
  if (n === 0) return NaN;
  const copy = Float64Array.from(values);
  const upper = select(copy, n >> 1);
  return n % 2 === 1 ? upper : (upper + select(copy, (n >> 1) - 1)) / 2;
}

export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (sorted.length - 1) * q;
  const low = Math.floor(at);
  return sorted[low]! + (sorted[Math.min(low + 1, sorted.length - 1)]! - sorted[low]!) * (at - low);
}

/** Robust standard deviation of the noise in successive values (trend and steps left out). */
export function noiseOf(values: readonly number[]): number {
  if (values.length < 3) return 0;
  const differences = values.slice(1).map((v, i) => v - values[i]!);
  const center = median(differences);
  return (1.4826 * median(differences.map((d) => Math.abs(d - center)))) / Math.SQRT2;
}

/** The median interval between readings. */
export function typicalIntervalMs(points: readonly Point[]): number {
  if (points.length < 2) return 0;
  return median(points.slice(1).map((p, i) => p.t - points[i]!.t));
}

/** Medians over time buckets of `widthMs` (at least the typical interval; empty buckets left out). */
export function bucketed(points: readonly Point[], floor: number, widthMs?: number): Buckets {
  const span = points.length > 0 ? points[points.length - 1]!.t - points[0]!.t : 0;
  const width = widthMs ?? Math.max(typicalIntervalMs(points), span / MAX_BUCKETS, 1);
  // The last reading lands at span / width = MAX_BUCKETS when the width comes from the span: it
  // joins the bucket before, not a bucket of its own (one unsmoothed reading at the very end).
  const lastBucket = widthMs === undefined ? MAX_BUCKETS - 1 : Infinity;
  const out: Point[] = [];
  const counts: number[] = [];
  const t0 = points[0]?.t ?? 0;
  const bucketOf = (t: number) => Math.min(lastBucket, Math.floor((t - t0) / width));
  for (let i = 0; i < points.length; ) {
    const bucket = bucketOf(points[i]!.t);
    const values: number[] = [];
    const times: number[] = [];
    for (; i < points.length && bucketOf(points[i]!.t) === bucket; i++) {
      values.push(points[i]!.v);
      times.push(points[i]!.t);
    }
    out.push({ t: times.reduce((a, b) => a + b, 0) / times.length, v: median(values) });
    counts.push(values.length);
  }
  return { points: out, counts, widthMs: width, sigma: Math.max(floor, noiseOf(out.map((p) => p.v))) };
}

interface Sums {
  n: number[];
  t: number[];
  v: number[];
  tt: number[];
  tv: number[];
  vv: number[];
}

function prefixSums(points: readonly Point[]): Sums {
  const s: Sums = { n: [0], t: [0], v: [0], tt: [0], tv: [0], vv: [0] };
  const t0 = points[0]?.t ?? 0;
  points.forEach((p, i) => {
    const t = (p.t - t0) / HOUR_MS;
    s.n.push(i + 1);
    s.t.push(s.t[i]! + t);
    s.v.push(s.v[i]! + p.v);
    s.tt.push(s.tt[i]! + t * t);
    s.tv.push(s.tv[i]! + t * p.v);
    s.vv.push(s.vv[i]! + p.v * p.v);
  });
  return s;
}

/** Residual sum of squares of the least-squares line through points [from, to). */
function lineCost(s: Sums, from: number, to: number): number {
  const n = to - from;
  const st = s.t[to]! - s.t[from]!;
  const sv = s.v[to]! - s.v[from]!;
  const stt = s.tt[to]! - s.tt[from]! - (st * st) / n;
  const stv = s.tv[to]! - s.tv[from]! - (st * sv) / n;
  const svv = s.vv[to]! - s.vv[from]! - (sv * sv) / n;
  return Math.max(0, stt > 0 ? svv - (stv * stv) / stt : svv);
}

export interface Piece {
  /** Bucket indices [from, to). */
  from: number;
  to: number;
  /** Theil-Sen slope per hour over the piece's buckets. */
  slopePerHour: number;
}

/** Theil-Sen slope per hour of `points` (0 for fewer than two). */
export function robustSlopePerHour(points: readonly Point[]): number {
  const n = points.length;
  const slopes = new Float64Array((n * (n - 1)) / 2);
  let count = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dt = points[j]!.t - points[i]!.t;
      if (dt > 0) slopes[count++] = ((points[j]!.v - points[i]!.v) / dt) * HOUR_MS;
    }
  }
  return count === 0 ? 0 : median(slopes.subarray(0, count));
}

/** The series cut into straight pieces: optimal partitioning with a penalty per piece. */
export function pieces(buckets: Buckets): Piece[] {
  const points = buckets.points;
  const n = points.length;
  if (n < 2 * MIN_PIECE) return [{ from: 0, to: n, slopePerHour: robustSlopePerHour(points) }];
  const s = prefixSums(points);
  const penalty = 3 * buckets.sigma * buckets.sigma * Math.log(n);
  const best = new Array<number>(n + 1).fill(Infinity);
  const cut = new Array<number>(n + 1).fill(0);
  best[0] = -penalty;
  for (let to = MIN_PIECE; to <= n; to++) {
    for (let from = 0; from <= to - MIN_PIECE; from = from === 0 ? MIN_PIECE : from + 1) {
      if (!Number.isFinite(best[from]!)) continue;
      const cost = best[from]! + lineCost(s, from, to) + penalty;
      if (cost < best[to]!) {
        best[to] = cost;
        cut[to] = from;
      }
    }
  }
  const out: Piece[] = [];
  for (let to = n; to > 0; to = cut[to]!) out.unshift({ from: cut[to]!, to, slopePerHour: robustSlopePerHour(points.slice(cut[to]!, to)) });
  return out;
}

/** R² of the least-squares line through `points`; null when it is constant. */
export function lineFit(points: readonly Point[]): number | null {
  if (points.length < 2) return null;
  const s = prefixSums(points);
  const n = points.length;
  const st = s.t[n]!;
  const sv = s.v[n]!;
  const stt = s.tt[n]! - (st * st) / n;
  const stv = s.tv[n]! - (st * sv) / n;
  const svv = s.vv[n]! - (sv * sv) / n;
  return svv <= 0 || stt <= 0 ? null : (stv * stv) / (stt * svv);
}

/** A stretch of the series that rose, as the rules judge it. */
export interface Rise {
  /** When it started rising (the end of the level before its first increase) and its last bucket. */
  from: number;
  to: number;
  /** Its level before the first increase and at its end, and the difference. */
  first: number;
  last: number;
  rise: number;
  /** Theil-Sen slope over its buckets. */
  slopePerHour: number;
  /** R² of a line through its buckets. */
  fit: number | null;
  /** The highest bucket before it (null when it starts the series). */
  highestBefore: number | null;
  /** When it last went up (a jump, or the end of a rising piece). */
  lastIncreaseAt: number;
  /** The median time between its increases (null with a single one). */
  increaseSpacingMs: number | null;
  /** The largest single jump between pieces, as a share of the rise: near 1 is one step. */
  largestJumpShare: number;
  /** Whether it runs to the series' end. */
  atEnd: boolean;
  /** Readings inside it. */
  samples: number;
  sigma: number;
}

type Trend = 'rising' | 'falling' | 'flat';

/** A piece's fitted line, evaluated at its two ends (Theil-Sen slope, median intercept). */
interface Level {
  piece: Piece;
  fromT: number;
  toT: number;
  start: number;
  end: number;
  trend: Trend;
}

function levelOf(piece: Piece, buckets: Buckets, pauseMs: number): Level {
  const points = buckets.points.slice(piece.from, piece.to);
  const t0 = points[0]!.t;
  const slopePerMs = piece.slopePerHour / HOUR_MS;
  const intercept = median(points.map((p) => p.v - slopePerMs * (p.t - t0)));
  const toT = points[points.length - 1]!.t;
  const start = intercept;
  const end = intercept + slopePerMs * (toT - t0);
  // A piece shorter than `pauseMs` has too few buckets for its slope to mean much: it counts as
  // falling only when it drops by a significant amount.
  const change = end - start;
  const fall = toT - t0 < pauseMs ? THRESHOLDS.significance : THRESHOLDS.levelSigmas;
  const trend: Trend = change >= THRESHOLDS.levelSigmas * buckets.sigma ? 'rising' : change <= -fall * buckets.sigma ? 'falling' : 'flat';
  return { piece, fromT: t0, toT, start, end, trend };
}

export interface Shape {
  buckets: Buckets;
  pieces: Piece[];
  /** Each stretch in which the series went up and did not come down, in time order. */
  rises: Rise[];
  /** The last rise when it runs to the series' end. */
  riseAtEnd: Rise | null;
}

/**
 * The shape of a series. `floor` is the smallest noise it can have (its unit's resolution). A
 * rise is a run of pieces in which the level never drops by more than `levelSigmas` noise, within a
 * piece or between two: smooth growth is a rising piece, growth in captures a staircase of flat
 * pieces with jumps between them, both count. A piece shorter than `pauseMs` is too short to
 * judge its slope strictly (see levelOf).
 */
export function shapeOf(points: readonly Point[], floor: number, pauseMs: number): Shape {
  const buckets = bucketed(points, floor);
  const all = pieces(buckets);
  const levels = all.map((piece) => levelOf(piece, buckets, pauseMs));
  const sigma = buckets.sigma;
  const found: Rise[] = [];
  let atEnd: Rise | null = null;
  for (let i = 0; i < levels.length; ) {
    // A run: no piece falls, and no jump between pieces falls.
    let j = i;
    while (levels[j]!.trend !== 'falling' && j + 1 < levels.length && levels[j + 1]!.trend !== 'falling' && levels[j + 1]!.start - levels[j]!.end >= -THRESHOLDS.levelSigmas * sigma) j++;
    const rise = riseIn(levels, i, j, buckets);
    if (rise !== null) {
      found.push(rise);
      if (rise.atEnd) atEnd = rise;
    }
    i = j + 1;
  }
  return { buckets, pieces: all, rises: found, riseAtEnd: atEnd };
}

/** The rise within levels [i, j], from its first increase on; null when it never goes up. */
function riseIn(levels: readonly Level[], i: number, j: number, buckets: Buckets): Rise | null {
  const sigma = buckets.sigma;
  const increases: { at: number; size: number; jump: boolean }[] = [];
  let start: { t: number; level: number } | null = null;
  for (let k = i; k <= j; k++) {
    const level = levels[k]!;
    if (k > i) {
      const jump = level.start - levels[k - 1]!.end;
      if (jump > THRESHOLDS.levelSigmas * sigma) {
        start ??= { t: levels[k - 1]!.toT, level: levels[k - 1]!.end };
        increases.push({ at: level.fromT, size: jump, jump: true });
      }
    }
    if (level.trend === 'rising') {
      start ??= { t: level.fromT, level: level.start };
      increases.push({ at: level.toT, size: level.end - level.start, jump: false });
    }
  }
  if (start === null) return null;
  const points = buckets.points;
  const last = levels[j]!;
  const fromIndex = points.findIndex((p) => p.t >= start!.t);
  const run = points.slice(fromIndex, last.piece.to);
  const rise = last.end - start.level;
  if (run.length === 0 || rise <= 0) return null;
  const times = increases.map((x) => x.at);
  const gaps = times.slice(1).map((t, k) => t - times[k]!);
  const before = points.slice(0, fromIndex).map((p) => p.v);
  return {
    from: start.t,
    to: last.toT,
    first: start.level,
    last: last.end,
    rise,
    slopePerHour: robustSlopePerHour(run),
    fit: lineFit(run),
    highestBefore: before.length > 0 ? Math.max(...before) : null,
    lastIncreaseAt: Math.max(...times),
    increaseSpacingMs: gaps.length > 0 ? median(gaps) : null,
    largestJumpShare: Math.max(0, ...increases.filter((x) => x.jump).map((x) => x.size)) / rise,
    atEnd: last.piece.to === points.length,
    samples: buckets.counts.slice(fromIndex, last.piece.to).reduce((a, b) => a + b, 0),
    sigma,
  };
}

/** One step: most of a change within a short time, with the series flat on both sides. */
export interface Step {
  /** Time of the last reading of the rise. */
  at: number;
  /** Time of the reading before it. */
  startedAt: number;
  rise: number;
  /** How long the series was flat before and after it. */
  flatBeforeMs: number;
  flatAfterMs: number;
}

/** The largest rise completed within `withinMs` (indices of its two readings); null with fewer than two. */
export function largestRiseWithin(points: readonly Point[], withinMs: number): { from: number; to: number; rise: number } | null {
  let best: { from: number; to: number; rise: number } | null = null;
  // For each reading, the lowest reading within `withinMs` before it (a monotonic deque).
  const window: number[] = [];
  let head = 0;
  for (let j = 0; j < points.length; j++) {
    while (head < window.length && points[j]!.t - points[window[head]!]!.t > withinMs) head++;
    if (head < window.length) {
      const i = window[head]!;
      const rise = points[j]!.v - points[i]!.v;
      if (best === null || rise > best.rise) best = { from: i, to: j, rise };
    }
    while (window.length > head && points[window[window.length - 1]!]!.v >= points[j]!.v) window.pop();
    window.push(j);
  }
  return best;
}

/**
 * The largest rise completed within `withinMs`, if the series is flat around it: each side lasts
 * at least `minFlatMs`, and over the whole of each side the spread between the 10th and 90th
 * percentiles is under a quarter of the rise. null when there is no such step of at least
 * `minRise`.
 */
export function stepIn(points: readonly Point[], withinMs: number, minRise: number, minFlatMs: number): Step | null {
  const best = largestRiseWithin(points, withinMs);
  if (best === null || best.rise < minRise) return null;
  const before = points.slice(0, best.from + 1);
  const after = points.slice(best.to);
  const spread = (side: readonly Point[]) => quantile(side.map((p) => p.v), 0.9) - quantile(side.map((p) => p.v), 0.1);
  const flatBeforeMs = before.length > 0 ? before[before.length - 1]!.t - before[0]!.t : 0;
  const flatAfterMs = after.length > 0 ? after[after.length - 1]!.t - after[0]!.t : 0;
  if (flatBeforeMs < minFlatMs || flatAfterMs < minFlatMs) return null;
  if (spread(before) > best.rise / 4 || spread(after) > best.rise / 4) return null;
  return { at: points[best.to]!.t, startedAt: points[best.from]!.t, rise: best.rise, flatBeforeMs, flatAfterMs };
}
