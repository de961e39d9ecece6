/**
 * What a growth finding says of the work done meanwhile: bytes per finished request and per 1k
 * tokens (from vLLM's counters in the history), and, where the load changed enough between the
 * two halves of the growth to tell, whether the growth followed the work or the clock. A leak per
 * request grows with the requests; a cache or a leak in background work grows with time.
 */
import type { Point, ProcessHistory } from './process-history.js';
import type { Rise } from './series-shape.js';
import { workOver } from './work-done.js';
import { bytes } from './wording.js';

/** The load must differ this much between the halves for the comparison to say anything. */
const LOAD_RATIO = 2;
/** Two halves "agree" when their rates are within this factor of each other. */
const AGREE_RATIO = 1.5;

const rounded = (n: number): string => (n >= 1e6 ? `${(n / 1e6).toFixed(1)}M` : n >= 1e4 ? `${Math.round(n / 1e3)}k` : String(Math.round(n)));
const within = (a: number, b: number, ratio: number): boolean => a > 0 && b > 0 && Math.max(a, b) / Math.min(a, b) <= ratio;

/** "" when the counters are unknown; else a clause beginning with "; ". `series`: the growing series. */
export function workNote(history: ProcessHistory, rise: Pick<Rise, 'from' | 'to' | 'rise'>, series: readonly Point[]): string {
  const work = workOver(history, rise.from, rise.to);
  if (work.requests === null) return '';
  if (work.requests === 0) return '; no request finished meanwhile: it grew without work';
  const perRequest = `${bytes(rise.rise / work.requests)} per finished request`;
  const perTokens = work.tokens !== null && work.tokens > 0 ? ` and ${bytes((rise.rise / work.tokens) * 1000)} per 1k tokens` : '';
  const counts = ` (${rounded(work.requests)} requests${work.tokens !== null ? `, ${rounded(work.tokens)} tokens` : ''})`;
  return `; ${perRequest}${perTokens}${counts}${proportionality(history, rise, series)}`;
}

/** The mean of up to three readings at one end of `points`. */
function edge(points: readonly Point[], end: 'first' | 'last'): number {
  const side = end === 'first' ? points.slice(0, 3) : points.slice(-3);
  return side.reduce((sum, p) => sum + p.v, 0) / side.length;
}

/**
 * ", in step with the work" when growth per request held while the request rate changed by
 * LOAD_RATIO between the halves; ", with time, not the work" when growth per hour held instead;
 * "" when the load did not change enough to tell, or neither held.
 */
function proportionality(history: ProcessHistory, rise: Pick<Rise, 'from' | 'to'>, series: readonly Point[]): string {
  const middle = (rise.from + rise.to) / 2;
  const halves = [
    [rise.from, middle],
    [middle, rise.to],
  ].map(([from, to]) => {
    const points = series.filter((p) => p.t >= from! && p.t <= to!);
    const requests = workOver(history, from!, to!).requests;
    const growth = points.length >= 2 ? edge(points, 'last') - edge(points, 'first') : null;
    return { hours: (to! - from!) / 3_600_000, requests, growth };
  });
  const [a, b] = halves as [(typeof halves)[number], (typeof halves)[number]];
  if (a.requests === null || b.requests === null || a.growth === null || b.growth === null) return '';
  if (a.requests === 0 || b.requests === 0 || within(a.requests, b.requests, LOAD_RATIO)) return '';
  if (within(a.growth / a.requests, b.growth / b.requests, AGREE_RATIO)) return `, in step with the work (the request rate changed ${(Math.max(a.requests, b.requests) / Math.min(a.requests, b.requests)).toFixed(1)}x between its halves, the growth per request did not)`;
  if (within(a.growth / a.hours, b.growth / b.hours, AGREE_RATIO)) return `, with time rather than the work (the request rate changed ${(Math.max(a.requests, b.requests) / Math.min(a.requests, b.requests)).toFixed(1)}x between its halves, the growth per hour did not)`;
  return '';
}
