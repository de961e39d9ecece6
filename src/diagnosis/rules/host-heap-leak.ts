/**
 * A real host heap leak (vLLM #8629): malloc's memory in use grows and goes on growing at the end
 * of the window, by a share of it that matters. Heap profilers see this one. Where malloc's own
 * figures are unknown (no companion in the process), anonymous RSS stands in, and the finding
 * says which part of it grew and that the split is not measured: the brk heap only malloc grows,
 * but anonymous mappings are malloc's thread arenas and large chunks or any mmap outside it (the
 * case that cost the write-up's first team weeks). Churn (memory going up and down with batches
 * of work) makes no new high and is not a leak.
 */
import { anonBytes, heapBytes, mallocInUseBytes, rssBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForHost, ongoing, seriesFrom } from '../growth.js';
import { containerRunway, evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { ProcessHistory } from '../process-history.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within } from '../trend.js';
import { bytes, duration, fitText, perHour } from '../wording.js';
import { workNote } from '../work-note.js';

const FIX =
  'Profile the host heap while it grows (tracemalloc or memray for Python objects, heaptrack for native code) and fix the object that accumulates; ' +
  'the known vLLM case (#8629) was lm-format-enforcer\'s TokenizerPrefixTreeNode cache.';

export function hostHeapLeak(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const anon = seriesFrom(history, steady.from, anonBytes);
  const malloc = seriesFrom(history, steady.from, mallocInUseBytes);
  const rss = seriesFrom(history, steady.from, rssBytes);
  if (malloc.length >= THRESHOLDS.minSamples && malloc.length >= THRESHOLDS.knownShare * anon.length) {
    const m = byteShape(malloc, history)?.riseAtEnd ?? null;
    if (!ongoing(m) || !mattersForHost(m)) return null;
    const runway = containerRunway(history, m.slopePerHour);
    return makeFinding(history, {
      id: 'host-heap-leak',
      severity: runway.severity,
      confidence: (0.5 + 0.5 * (m.fit ?? 0)) * lengthFactor(within(malloc, m)),
      title: 'Host heap leak',
      summary:
        `malloc's memory in use grew ${bytes(m.rise)} in ${duration(m.to - m.from)} (${perHour(m.slopePerHour)}, ${fitText(m.fit)}) and is still growing${startupNote(steady)}` +
        `${workNote(history, m, malloc)}: a leak that heap profilers will show.${runway.text}`,
      at: m.from,
      ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
      evidence: [
        evidenceOf('host.malloc.inUseBytes', 'bytes', riseTrend(m), `malloc in use (glibc's own figure, read in the process): ${bytes(m.first)} → ${bytes(m.last)}`),
        evidenceOf('host.anonBytes', 'bytes', trend(within(anon, m)), 'anonymous RSS'),
        evidenceOf('host.rssBytes', 'bytes', trend(within(rss, m)), 'resident set'),
      ],
      fix: FIX,
    });
  }
  const a = byteShape(anon, history)?.riseAtEnd ?? null;
  if (!ongoing(a) || !mattersForHost(a)) return null;
  const heap = trend(within(seriesFrom(history, steady.from, heapBytes), a));
  const inHeap = heap.samples >= THRESHOLDS.minSamples && heap.change >= THRESHOLDS.carryShare * a.rise;
  const runway = containerRunway(history, a.slopePerHour);
  const where = inHeap
    ? `mostly in the brk heap (${bytes(heap.change)}), which only malloc grows: a leak that heap profilers will show`
    : 'outside the brk heap, in anonymous mappings: malloc\'s thread arenas and large chunks, or mmaps outside malloc that heap profilers never see';
  return makeFinding(history, {
    id: 'host-heap-leak',
    severity: runway.severity,
    confidence: (inHeap ? 1 : 0.7) * (0.5 + 0.5 * (a.fit ?? 0)) * lengthFactor(within(anon, a)),
    title: inHeap ? 'Host heap leak' : 'Host memory leak (malloc not measured)',
    summary:
      `Anonymous RSS grew ${bytes(a.rise)} in ${duration(a.to - a.from)} (${perHour(a.slopePerHour)}, ${fitText(a.fit)}) and is still growing${startupNote(steady)}` +
      `${workNote(history, a, anon)}, ${where}. malloc's own figures were not read (the companion reads them inside the process), so how much of it malloc holds is not measured.${runway.text}`,
    at: a.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [
      evidenceOf('host.anonBytes', 'bytes', riseTrend(a), `anonymous RSS: ${bytes(a.first)} → ${bytes(a.last)}`),
      ...(heap.samples >= THRESHOLDS.minSamples ? [evidenceOf('host.heapBytes', 'bytes', heap, 'the brk heap (malloc\'s main arena)')] : []),
      evidenceOf('host.rssBytes', 'bytes', trend(within(rss, a)), 'resident set'),
    ],
    fix: `Run the companion in the process (\`gpu-layers companion\`) to tell malloc's part from the rest. ${FIX}`,
  });
}
