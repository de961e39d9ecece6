/**
 * Whether a series grows as a trend (steadily or in many steps) rather than once, and how much
 * of its growth happened while the process was idle: the two questions most rules start with.
 */
import { idleAt, type Point, type ProcessHistory, type HistoryPoint } from './process-history.js';
import { THRESHOLDS } from './thresholds.js';
import { singleStep, type Trend } from './trend.js';

export function isGrowing(points: readonly Point[], t: Trend, minFit: number = THRESHOLDS.fit): boolean {
  return (
    t.change >= THRESHOLDS.growthBytes &&
    t.slopePerHour > 0 &&
    (t.fit ?? 0) >= minFit &&
    t.rises >= THRESHOLDS.minRises &&
    singleStep(points, THRESHOLDS.growthBytes) === null
  );
}

export interface IdleGrowth {
  /** Sum of rises between two idle readings. */
  idleRise: number;
  /** Sum of all rises. */
  totalRise: number;
  /** Time spent between two idle readings. */
  idleMs: number;
  /** Idle stretches (between two idle readings) in which the series rose beyond noise. */
  risingIdleIntervals: number;
  idleIntervals: number;
  /** Readings whose load is known. */
  known: number;
  firstIdleRiseAt: number | null;
}

/** Splits a series' rises by load; an interval is idle when the readings at both ends are. */
export function idleGrowth(history: ProcessHistory, read: (point: HistoryPoint) => number | null | undefined): IdleGrowth {
  const result: IdleGrowth = { idleRise: 0, totalRise: 0, idleMs: 0, risingIdleIntervals: 0, idleIntervals: 0, known: 0, firstIdleRiseAt: null };
  let previous: { t: number; v: number; idle: boolean | null } | null = null;
  for (const point of history.points) {
    const v = read(point);
    const idle = idleAt(point);
    if (idle !== null) result.known++;
    if (v === null || v === undefined) continue;
    if (previous !== null) {
      const rise = Math.max(0, v - previous.v);
      result.totalRise += rise;
      if (previous.idle === true && idle === true) {
        result.idleIntervals++;
        result.idleMs += point.t - previous.t;
        result.idleRise += rise;
        if (rise > THRESHOLDS.noiseBytes) {
          result.risingIdleIntervals++;
          result.firstIdleRiseAt ??= previous.t;
        }
      }
    }
    previous = { t: point.t, v, idle };
  }
  return result;
}

/** Whether most of the growth came while idle (then idle-growth, not another rule, names it). */
export function mostlyIdle(growth: IdleGrowth): boolean {
  return growth.idleRise >= THRESHOLDS.growthBytes && growth.idleRise >= 0.5 * growth.totalRise && growth.risingIdleIntervals >= 2;
}
