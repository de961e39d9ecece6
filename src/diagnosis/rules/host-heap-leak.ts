/**
 * A real host heap leak (vLLM #8629): anonymous RSS, the heap, grows and goes on growing at the
 * end of the window, by a share of the heap that matters. Churn (the heap
 * going up and down with batches of work) makes no new high and is not a leak. Heap profilers do
 * see this one.
 */
import { anonBytes, rssBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForHost, ongoing, seriesFrom } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { ProcessHistory } from '../process-history.js';
import type { SteadyWindow } from '../steady-window.js';
import { riseTrend, trend, within } from '../trend.js';
import { bytes, duration, fitText, perHour } from '../wording.js';

export function hostHeapLeak(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const anon = seriesFrom(history, steady.from, anonBytes);
  const a = byteShape(anon, history)?.riseAtEnd ?? null;
  const rss = seriesFrom(history, steady.from, rssBytes);
  if (!ongoing(a) || !mattersForHost(a)) return null;
  const r = trend(within(rss, a));
  return makeFinding(history, {
    id: 'host-heap-leak',
    severity: 'warning',
    confidence: (0.5 + 0.5 * (a.fit ?? 0)) * lengthFactor(within(anon, a)),
    title: 'Host heap leak',
    summary: `Anonymous RSS (the heap) grew ${bytes(a.rise)} in ${duration(a.to - a.from)} (${perHour(a.slopePerHour)}, ${fitText(a.fit)}) and is still growing${startupNote(steady)}: a leak that heap profilers will show.`,
    at: a.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [evidenceOf('host.anonBytes', 'bytes', riseTrend(a), `heap: ${bytes(a.first)} → ${bytes(a.last)}`), evidenceOf('host.rssBytes', 'bytes', r, 'resident set')],
    fix:
      'Profile the host heap while it grows (tracemalloc or memray for Python objects, heaptrack for native code) and fix the object that accumulates; ' +
      'the known vLLM case (#8629) was lm-format-enforcer\'s TokenizerPrefixTreeNode cache.',
  });
}
