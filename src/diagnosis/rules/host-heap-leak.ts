/**
 * A real host heap leak (vLLM #8629): anonymous RSS, the heap, grows steadily and almost never
 * falls. Heap profilers do see this one.
 */
import type { Finding } from '../finding-schema.js';
import { isGrowing } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding } from '../make-finding.js';
import { seriesOf, type ProcessHistory } from '../process-history.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, fitText, perHour } from '../wording.js';

export function hostHeapLeak(history: ProcessHistory): Finding | null {
  const anon = seriesOf(history, (p) => p.process.host?.anonBytes);
  if (anon.length < THRESHOLDS.minSamples) return null;
  const a = trend(anon, THRESHOLDS.noiseBytes);
  if (!isGrowing(anon, a, THRESHOLDS.leakFit) || a.monotonic < THRESHOLDS.leakMonotonic) return null;
  const rss = trend(seriesOf(history, (p) => p.process.host?.rssBytes), THRESHOLDS.noiseBytes);
  return makeFinding(history, {
    id: 'host-heap-leak',
    severity: 'warning',
    confidence: (0.4 + 0.4 * (a.fit ?? 0) + 0.2 * a.monotonic) * lengthFactor(anon),
    title: 'Host heap leak',
    summary: `Anonymous RSS (the heap) grew ${bytes(a.change)} (${perHour(a.slopePerHour)}, ${fitText(a.fit)}), rising in ${Math.round(a.monotonic * 100)}% of intervals: a leak that heap profilers will show.`,
    at: a.firstRiseAt,
    evidence: [
      evidenceOf('host.anonBytes', 'bytes', a, `heap: ${bytes(a.first)} → ${bytes(a.last)}`),
      evidenceOf('host.rssBytes', 'bytes', rss, 'resident set'),
    ],
    fix:
      'Profile the host heap while it grows (tracemalloc or memray for Python objects, heaptrack for native code) and fix the object that accumulates; ' +
      'the known vLLM case (#8629) was lm-format-enforcer\'s TokenizerPrefixTreeNode cache.',
  });
}
