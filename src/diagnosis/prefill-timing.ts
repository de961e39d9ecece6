/**
 * The write-up's signal for KV-cache fragmentation: how a series' growth lines up with prefills,
 * and with prefills that come after the server sat idle (its 3 AM pattern: "extended idle
 * periods followed by a burst of concurrent prefills"). Every interval between two readings goes
 * to one class by vLLM's prompt-token counter: a prefill after at least `burstAfterIdleMs` without
 * one, another prefill, or none; the series' net change over the interval goes to its class.
 * Signed changes, so the readings' noise cancels within a class instead of piling up.
 */
import { promptTokens } from './fields.js';
import type { Point, ProcessHistory } from './process-history.js';
import { THRESHOLDS } from './thresholds.js';
import { counterIncrease } from '../layers/request-load.js';

export interface PrefillTiming {
  /** The series' net change over intervals with a prefill after idle, with another prefill, and with none. */
  afterIdle: number;
  otherPrefill: number;
  noPrefill: number;
  /** How many intervals of each. */
  intervals: { afterIdle: number; otherPrefill: number; noPrefill: number };
}

/** null where the prompt-token counter is unknown over most of the span. */
export function prefillTiming(history: ProcessHistory, series: readonly Point[], from: number, to: number): PrefillTiming | null {
  const tokens = new Map<number, number>();
  for (const point of history.points) {
    const v = promptTokens(point);
    if (v !== null && v !== undefined && point.t >= from - THRESHOLDS.burstAfterIdleMs && point.t <= to) tokens.set(point.t, v);
  }
  const span = series.filter((p) => p.t >= from && p.t <= to);
  if (span.length < THRESHOLDS.minSamples || span.filter((p) => tokens.has(p.t)).length < THRESHOLDS.knownShare * span.length) return null;
  // When the last prefill was seen, walking the readings with a known counter in time order.
  const prefillAt = new Map<number, number | null>();
  let lastPrefill: number | null = null;
  let previous: number | null = null;
  for (const [t, v] of [...tokens].sort((a, b) => a[0] - b[0])) {
    if ((counterIncrease(previous, v) ?? 0) > 0) {
      prefillAt.set(t, lastPrefill);
      lastPrefill = t;
    }
    previous = v;
  }
  const result: PrefillTiming = { afterIdle: 0, otherPrefill: 0, noPrefill: 0, intervals: { afterIdle: 0, otherPrefill: 0, noPrefill: 0 } };
  for (let i = 1; i < span.length; i++) {
    const a = span[i - 1]!;
    const b = span[i]!;
    const change = b.v - a.v;
    if (!prefillAt.has(b.t)) {
      result.noPrefill += change;
      result.intervals.noPrefill++;
      continue;
    }
    const before = prefillAt.get(b.t)!;
    // The idle time before this prefill: since the previous one (unknown before the first: not idle).
    if (before !== null && a.t - before >= THRESHOLDS.burstAfterIdleMs) {
      result.afterIdle += change;
      result.intervals.afterIdle++;
    } else {
      result.otherPrefill += change;
      result.intervals.otherPrefill++;
    }
  }
  return result;
}
