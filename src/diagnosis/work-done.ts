/**
 * The work a vLLM server did, from its cumulative counters in a history: requests finished and
 * tokens over a span (is growth proportional to work?), and whether the process was idle at each
 * reading by the write-up's measure. Counters are summed as increases between readings, and one
 * that goes down restarted (vLLM restarted), so its new value is the increase, as Prometheus's
 * rate() takes it.
 */
import { counterIncrease } from '../layers/request-load.js';
import { generationTokens, promptTokens, requestsFinished, requestsRunning } from './fields.js';
import { idleAt, type HistoryPoint, type ProcessHistory } from './process-history.js';
import { THRESHOLDS } from './thresholds.js';

type Reader = (point: HistoryPoint) => number | null | undefined;

/** The increase of a counter over the readings from `from` to `to` (inclusive); null when fewer than two are known. */
export function increaseOver(history: ProcessHistory, read: Reader, from: number, to: number): number | null {
  let previous: number | null = null;
  let total = 0;
  let readings = 0;
  for (const point of history.points) {
    if (point.t < from) continue;
    if (point.t > to) break;
    const v = read(point);
    if (v === null || v === undefined) continue;
    if (previous !== null) total += counterIncrease(previous, v) ?? 0;
    previous = v;
    readings++;
  }
  return readings >= 2 ? total : null;
}

export interface WorkDone {
  requests: number | null;
  tokens: number | null;
}

/** Requests finished and tokens processed (prompt + generated) from `from` to `to`. */
export function workOver(history: ProcessHistory, from: number, to: number): WorkDone {
  const prompt = increaseOver(history, promptTokens, from, to);
  const generated = increaseOver(history, generationTokens, from, to);
  return { requests: increaseOver(history, requestsFinished, from, to), tokens: prompt === null || generated === null ? null : prompt + generated };
}

/**
 * Whether the process was idle at each reading: no request running or waiting then, or, where
 * vLLM's counters are known, idle by the write-up's measure: over the trailing `idleWindowMs`,
 * fewer than `idleRequestsPerSecond` requests finished and less than `idleMeanRunning` request
 * was in flight on average (a stream of long generations finishes nothing for minutes but is not
 * idle). So the readings of a trickle of one request every few minutes, the 3 AM load, are idle
 * even when one of its requests is running, as the write-up's alert has it. null where neither
 * is known.
 */
export function idleness(history: ProcessHistory): (boolean | null)[] {
  const key = idleness;
  if (history.memo.has(key)) return history.memo.get(key) as (boolean | null)[];
  const points = history.points;
  const result: (boolean | null)[] = new Array(points.length).fill(null);
  // Two pointers over the trailing window; running sums of finished requests and running readings.
  let start = 0;
  let finished = 0;
  let runningSum = 0;
  let runningCount = 0;
  const finishedAt: number[] = new Array(points.length).fill(0);
  let previousCount: number | null = null;
  for (let i = 0; i < points.length; i++) {
    const count = requestsFinished(points[i]!);
    if (count !== null && count !== undefined) {
      finishedAt[i] = counterIncrease(previousCount, count) ?? 0;
      previousCount = count;
    }
  }
  for (let i = 0; i < points.length; i++) {
    const point = points[i]!;
    finished += finishedAt[i]!;
    const running = requestsRunning(point);
    if (running !== null && running !== undefined) {
      runningSum += running;
      runningCount++;
    }
    while (points[start]!.t < point.t - THRESHOLDS.idleWindowMs) {
      // The first reading in the window counts only as the base its successor's increase is taken from.
      finished -= finishedAt[start + 1] ?? 0;
      const r = requestsRunning(points[start]!);
      if (r !== null && r !== undefined) {
        runningSum -= r;
        runningCount--;
      }
      start++;
    }
    const span = point.t - points[start]!.t;
    const countsKnown = requestsFinished(point) != null && requestsFinished(points[start]!) != null && span >= THRESHOLDS.idleWindowMs / 3;
    const meanRunning = runningCount > 0 ? runningSum / runningCount : 0;
    const trickle = countsKnown ? finished / (span / 1000) < THRESHOLDS.idleRequestsPerSecond && meanRunning < THRESHOLDS.idleMeanRunning : null;
    const empty = idleAt(point);
    result[i] = empty === true || trickle === true ? true : empty === null && trickle === null ? null : false;
  }
  history.memo.set(key, result);
  return result;
}
