/**
 * Where a process's steady life begins in the window. A process that starts inside it (or a
 * recording begun while it was starting) first loads weights, allocates the KV arena and
 * captures graphs: tens of GiB in a minute or two. That is its start-up, not growth, and the
 * rules judge what comes after it. Restarts are new processes (process-history.ts), so each
 * has its own start-up.
 */
import type { ProcessHistory } from './process-history.js';
import { median } from './series-shape.js';
import { THRESHOLDS } from './thresholds.js';

export interface SteadyWindow {
  /** From when the rules judge the process. */
  from: number;
  /** Whether a start-up before it was left out. */
  startupExcluded: boolean;
}

export function steadyWindow(history: ProcessHistory): SteadyWindow {
  const points = history.points.filter((p) => p.process.layers.driverBytes !== null);
  const first = points[0];
  if (first === undefined) return { from: history.points[0]?.t ?? 0, startupExcluded: false };
  const driver = points.map((p) => p.process.layers.driverBytes!);
  // Its typical level once running (a slow creep after that does not move it), else the median of
  // its later half.
  const settled = points.filter((p) => p.t - first.t >= THRESHOLDS.settledFromMs && p.t - first.t <= THRESHOLDS.settledToMs).map((p) => p.process.layers.driverBytes!);
  const typical = settled.length >= 3 ? median(settled) : median(driver.slice(driver.length >> 1));
  const startedInWindow = first.t > history.windowStart + Math.max(2 * history.intervalMs, THRESHOLDS.startedInWindowMs);
  const earlyRise = points.filter((p) => p.t - first.t <= THRESHOLDS.startupFastMs).reduce((top, p) => Math.max(top, p.process.layers.driverBytes!), 0) - driver[0]!;
  const startingAtFirst = earlyRise >= THRESHOLDS.floorBytes && earlyRise >= THRESHOLDS.startupFastShare * typical;
  if (!startedInWindow && !startingAtFirst) return { from: first.t, startupExcluded: false };
  const reached = points.find((p) => p.process.layers.driverBytes! >= THRESHOLDS.startupLevelShare * typical) ?? first;
  return { from: reached.t + THRESHOLDS.startupSettleMs, startupExcluded: true };
}
