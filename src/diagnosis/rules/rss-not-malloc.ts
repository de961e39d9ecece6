/**
 * RSS is not malloc (the Mistral case, host side): RSS grows, but in driver mappings
 * (/dev/nvidia*: pinned memory, CUDA graph and UVM buffers) or file-backed pages, while the heap
 * is flat. Heap profilers show nothing and weeks go into chasing a leak that is not there.
 */
import type { Finding } from '../finding-schema.js';
import { isGrowing } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding } from '../make-finding.js';
import { seriesOf, type ProcessHistory } from '../process-history.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend, type Trend } from '../trend.js';
import { bytes, fitText, perHour } from '../wording.js';

export function rssNotMalloc(history: ProcessHistory): Finding | null {
  const noise = THRESHOLDS.noiseBytes;
  const rssPoints = seriesOf(history, (p) => p.process.host?.rssBytes);
  if (rssPoints.length < THRESHOLDS.minSamples) return null;
  const rss = trend(rssPoints, noise);
  if (!isGrowing(rssPoints, rss)) return null;
  const anon = trend(seriesOf(history, (p) => p.process.host?.anonBytes), noise);
  if (anon.samples < THRESHOLDS.minSamples || anon.change > THRESHOLDS.flatShare * rss.change) return null;
  // Driver mappings are file-backed pages, so host.fileBytes includes them: name the part that
  // grew most, and require it to carry at least half the growth.
  const parts: [string, string, Trend][] = [
    ['host.driverMappedBytes', 'driver mappings (/dev/nvidia*)', trend(seriesOf(history, (p) => p.process.host?.driverMappedBytes), noise)],
    ['host.fileBytes', 'file-backed pages', trend(seriesOf(history, (p) => p.process.host?.fileBytes), noise)],
    ['host.shmemBytes', 'shared memory', trend(seriesOf(history, (p) => p.process.host?.shmemBytes), noise)],
  ];
  const known = parts.filter(([, , t]) => t.samples >= THRESHOLDS.minSamples);
  if (known.length === 0) return null;
  const [series, what, main] = known.reduce((a, b) => (b[2].change > a[2].change ? b : a));
  if (main.change < 0.5 * rss.change) return null;
  return makeFinding(history, {
    id: 'rss-not-malloc',
    severity: 'warning',
    confidence: (0.5 + 0.3 * (rss.fit ?? 0) + 0.2 * Math.min(1, main.change / rss.change)) * lengthFactor(rssPoints),
    title: 'RSS grows outside the heap',
    summary:
      `RSS grew ${bytes(rss.change)} (${perHour(rss.slopePerHour)}, ${fitText(rss.fit)}), mostly in ${what} (${bytes(main.change)}), while the heap changed ${bytes(anon.change)}: ` +
      'not a malloc leak, and heap profilers will show nothing.',
    at: main.firstRiseAt,
    evidence: [
      evidenceOf('host.rssBytes', 'bytes', rss, 'resident set'),
      evidenceOf(series, 'bytes', main, `${what}: ${bytes(main.first)} → ${bytes(main.last)}`),
      evidenceOf('host.anonBytes', 'bytes', anon, 'heap: flat'),
    ],
    fix:
      'Stop chasing a heap leak: look at the driver side. Driver mappings grow with pinned host memory and with CUDA graphs captured for new shapes; ' +
      'check the device layers for growth outside the allocator (limit CUDA graph capture sizes) and the process\'s pinned-memory use.',
  });
}
