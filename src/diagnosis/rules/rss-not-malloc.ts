/**
 * RSS is not malloc (the Mistral case, host side): RSS grows and goes on growing, but in driver
 * mappings (/dev/nvidia*: pinned memory, CUDA graph and UVM buffers) or file-backed pages, while
 * the heap is flat. Heap profilers show nothing and weeks go into chasing a leak that is not there.
 */
import { anonBytes, driverMappedBytes, fileBytes, rssBytes, shmemBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForHost, ongoing, seriesFrom } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { ProcessHistory } from '../process-history.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within, type Trend } from '../trend.js';
import { bytes, duration, fitText, perHour } from '../wording.js';

export function rssNotMalloc(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const rssPoints = seriesFrom(history, steady.from, rssBytes);
  const rss = byteShape(rssPoints, history)?.riseAtEnd ?? null;
  if (!ongoing(rss) || !mattersForHost(rss)) return null;
  const anonPoints = within(seriesFrom(history, steady.from, anonBytes), rss);
  const anon = trend(anonPoints);
  if (anonPoints.length < THRESHOLDS.minSamples || anon.change > THRESHOLDS.flatShare * rss.rise) return null;
  // Driver mappings are file-backed pages, so host.fileBytes includes them: name the part that
  // grew most, and require it to carry at least half the growth.
  const part = (read: typeof fileBytes) => trend(within(seriesFrom(history, steady.from, read), rss));
  const parts: [string, string, Trend][] = [
    ['host.driverMappedBytes', 'driver mappings (/dev/nvidia*)', part(driverMappedBytes)],
    ['host.fileBytes', 'file-backed pages', part(fileBytes)],
    ['host.shmemBytes', 'shared memory', part(shmemBytes)],
  ];
  const known = parts.filter(([, , t]) => t.samples >= THRESHOLDS.minSamples);
  if (known.length === 0) return null;
  const [series, what, main] = known.reduce((a, b) => (b[2].change > a[2].change ? b : a));
  if (main.change < THRESHOLDS.carryShare * rss.rise) return null;
  return makeFinding(history, {
    id: 'rss-not-malloc',
    severity: 'warning',
    confidence: (0.5 + 0.3 * (rss.fit ?? 0) + 0.2 * Math.min(1, main.change / rss.rise)) * lengthFactor(within(rssPoints, rss)),
    title: 'RSS grows outside the heap',
    summary:
      `RSS grew ${bytes(rss.rise)} in ${duration(rss.to - rss.from)} (${perHour(rss.slopePerHour)}, ${fitText(rss.fit)}) and is still growing, mostly in ${what} (${bytes(main.change)}), while the heap changed ${bytes(anon.change)}${startupNote(steady)}: ` +
      'not a malloc leak, and heap profilers will show nothing.',
    at: rss.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [
      evidenceOf('host.rssBytes', 'bytes', riseTrend(rss), 'resident set'),
      evidenceOf(series, 'bytes', main, `${what}: ${bytes(main.first)} → ${bytes(main.last)}`),
      evidenceOf('host.anonBytes', 'bytes', anon, 'heap: flat'),
    ],
    fix:
      'Stop chasing a heap leak: look at the driver side. Driver mappings grow with pinned host memory and with CUDA graphs captured for new shapes; ' +
      'check the device layers for growth outside the allocator (limit CUDA graph capture sizes) and the process\'s pinned-memory use.',
  });
}
