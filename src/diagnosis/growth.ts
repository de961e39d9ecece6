/**
 * The questions most rules start with: does a series grow by an amount that matters for what it
 * runs on, is that growth still going on at the end, and how much of it came while the process
 * was idle. Time and noise, never reading counts, so the answers hold at any sampling interval.
 */
import type { HistoryPoint, Point, ProcessHistory } from './process-history.js';
import { shapeOf, type Rise, type Shape } from './series-shape.js';
import { THRESHOLDS } from './thresholds.js';
import { idleness } from './work-done.js';

/** A value kept in the history's memo under `key`, computed once. */
function remembered<T>(history: ProcessHistory, key: unknown, compute: () => T): T {
  if (!history.memo.has(key)) history.memo.set(key, compute());
  return history.memo.get(key) as T;
}

/**
 * The known values of one field from `from` on. The same reader (fields.ts) from the same time
 * gives the same array: do not change it.
 */
export function seriesFrom(history: ProcessHistory, from: number, read: (point: HistoryPoint) => number | null | undefined): Point[] {
  const byStart = remembered(history, read, () => new Map<number, Point[]>());
  let points = byStart.get(from);
  if (points === undefined) {
    points = [];
    for (const point of history.points) {
      if (point.t < from) continue;
      const v = read(point);
      if (v !== null && v !== undefined && Number.isFinite(v)) points.push({ t: point.t, v });
    }
    byStart.set(from, points);
  }
  return points;
}

/** The shape of a byte series (kept in `history` when given), or null when it has too few readings. */
export function byteShape(points: readonly Point[], history?: ProcessHistory): Shape | null {
  if (points.length < THRESHOLDS.minSamples) return null;
  const compute = () => shapeOf(points, THRESHOLDS.noiseFloorBytes, THRESHOLDS.pauseMs);
  return history === undefined ? compute() : remembered(history, points, compute);
}

/** A rise beyond the byte floor and the series' own noise. */
export function significant(rise: Rise): boolean {
  return rise.rise >= THRESHOLDS.floorBytes && rise.rise >= THRESHOLDS.significance * rise.sigma;
}

/** Hours until `freeBytes` is gone at `slopePerHour` (null when it is not shrinking or unknown). */
export function hoursToFull(freeBytes: number | null, slopePerHour: number): number | null {
  return freeBytes !== null && slopePerHour > 0 ? freeBytes / slopePerHour : null;
}

/** The GPU (or MIG slice) figures at the last reading. */
export function deviceAtEnd(history: ProcessHistory): { totalBytes: number | null; freeBytes: number | null } {
  const last = history.points[history.points.length - 1]!;
  return { totalBytes: last.deviceTotalBytes, freeBytes: last.deviceFreeBytes };
}

/**
 * Device growth that matters: beyond noise and the byte floor, and either a share of the device's
 * memory or fast enough to fill what is free within a week.
 */
export function mattersForDevice(rise: Rise, history: ProcessHistory): boolean {
  if (!significant(rise)) return false;
  const { totalBytes, freeBytes } = deviceAtEnd(history);
  const toFull = hoursToFull(freeBytes, rise.slopePerHour);
  return (totalBytes !== null && rise.rise >= THRESHOLDS.deviceShare * totalBytes) || (toFull !== null && toFull * 3_600_000 < THRESHOLDS.timeToFullMs);
}

/**
 * Host growth that matters: beyond noise and the byte floor, and a share of the series' own level
 * before it rose (the heap's for a heap leak, the resident set's for RSS).
 */
export function mattersForHost(rise: Rise): boolean {
  return significant(rise) && rise.rise >= THRESHOLDS.hostShare * Math.max(0, rise.first);
}

/**
 * Growth that goes on: a rise that runs to the end of the window, lasts long enough to be more
 * than a burst, is not one step (no jump carries most of it), reaches a new high, and last went
 * up recently: within twice its usual spacing between increases, or a pause's length.
 */
export function ongoing(rise: Rise | null): rise is Rise {
  if (rise === null || !rise.atEnd || rise.to - rise.from < THRESHOLDS.minGrowthMs) return false;
  if (rise.largestJumpShare > THRESHOLDS.carryShare) return false;
  if (rise.highestBefore !== null && rise.last <= rise.highestBefore + THRESHOLDS.levelSigmas * rise.sigma) return false;
  return rise.to - rise.lastIncreaseAt <= Math.max(THRESHOLDS.pauseMs, 2 * (rise.increaseSpacingMs ?? 0));
}

export interface IdleGrowth {
  /** Net rise over stretches with no request in flight, and over the others. */
  idleRise: number;
  busyRise: number;
  /** Idle time in stretches that rose beyond noise. */
  risingIdleMs: number;
  idleMs: number;
  /** Readings whose load is known. */
  known: number;
  total: number;
  firstIdleRiseAt: number | null;
}

/**
 * Splits a series' growth by load: the series is cut into stretches of readings that are all
 * idle or all busy, and each stretch's net change (from its first reading to its last, means of
 * up to three at each end) goes to one side. Net changes, not the sum of every reading's rise:
 * that sum grows with the sampling rate through noise alone.
 */
export function idleGrowth(history: ProcessHistory, from: number, read: (point: HistoryPoint) => number | null | undefined, noise: number): IdleGrowth {
  const result: IdleGrowth = { idleRise: 0, busyRise: 0, risingIdleMs: 0, idleMs: 0, known: 0, total: 0, firstIdleRiseAt: null };
  let stretch: { idle: boolean; points: Point[] } | null = null;
  const idleAtPoint = idleness(history);
  const close = (): void => {
    if (stretch === null || stretch.points.length < 2) return;
    const edge = Math.min(3, Math.floor(stretch.points.length / 2));
    const mean = (side: Point[]) => side.reduce((sum, p) => sum + p.v, 0) / side.length;
    const change = mean(stretch.points.slice(-edge)) - mean(stretch.points.slice(0, edge));
    const ms = stretch.points[stretch.points.length - 1]!.t - stretch.points[0]!.t;
    if (stretch.idle) {
      result.idleMs += ms;
      result.idleRise += Math.max(0, change);
      if (change > THRESHOLDS.significance * noise) {
        result.risingIdleMs += ms;
        result.firstIdleRiseAt ??= stretch.points[0]!.t;
      }
    } else {
      result.busyRise += Math.max(0, change);
    }
  };
  for (const [index, point] of history.points.entries()) {
    if (point.t < from) continue;
    const v = read(point);
    if (v === null || v === undefined) continue;
    result.total++;
    const idle = idleAtPoint[index]!;
    if (idle === null) {
      close();
      stretch = null;
      continue;
    }
    result.known++;
    if (stretch === null || stretch.idle !== idle) {
      close();
      stretch = { idle, points: [] };
    }
    stretch.points.push({ t: point.t, v });
  }
  close();
  return result;
}

/** Whether the growth came mostly while idle (then idle-growth, not another rule, names it). */
export function mostlyIdle(growth: IdleGrowth, minRise: number): boolean {
  return (
    growth.known >= THRESHOLDS.knownShare * growth.total &&
    growth.idleRise >= minRise &&
    growth.idleRise >= THRESHOLDS.idleShare * (growth.idleRise + growth.busyRise) &&
    growth.risingIdleMs >= THRESHOLDS.minIdleRisingMs
  );
}
