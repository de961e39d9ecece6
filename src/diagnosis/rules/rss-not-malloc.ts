/**
 * RSS is not malloc (the Mistral case, host side): RSS grows and goes on growing while malloc's
 * memory in use is flat. The growth is somewhere a heap profiler cannot see: anonymous memory
 * malloc does not hold at all (mmaps of other libraries: registration caches, pinned buffers,
 * pymalloc arenas, JIT code), free memory malloc keeps in its arenas, the driver's mappings
 * (/dev/nvidia*: pinned memory, CUDA graph and UVM buffers), file-backed pages or shared memory.
 * With malloc's own figures (the companion) the anonymous part is split; without them the heap
 * stands for malloc and must be flat, and only the non-anonymous parts can be named.
 */
import { anonBytes, driverMappedBytes, fileBytes, mallocFreeBytes, mallocInUseBytes, outsideMallocBytes, rssBytes, shmemBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForHost, ongoing, seriesFrom } from '../growth.js';
import { containerRunway, evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { HistoryPoint, ProcessHistory } from '../process-history.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within, type Trend } from '../trend.js';
import { bytes, duration, fitText, perHour } from '../wording.js';
import { workNote } from '../work-note.js';

type Reader = (point: HistoryPoint) => number | null | undefined;

interface Part {
  series: string;
  what: string;
  read: Reader;
  fix: string;
}

const DRIVER_FIX = 'Driver mappings grow with pinned host memory and with CUDA graphs captured for new shapes: check the device layers for growth outside the allocator (limit CUDA graph capture sizes) and the process\'s pinned-memory use.';
const PARTS: Part[] = [
  {
    series: 'host.outsideMallocBytes',
    what: 'anonymous memory malloc does not hold (mmaps outside malloc)',
    read: outsideMallocBytes,
    fix: 'Find the library that maps it: the growing anonymous mappings in /proc/PID/smaps (their count and sizes; [anon:NAME] where the library names them), then the communication library\'s registration cache, pinned buffers or a JIT.',
  },
  {
    series: 'host.malloc.freeBytes',
    what: 'free memory malloc keeps in its arenas (fragmentation of the C heap)',
    read: mallocFreeBytes,
    fix: 'Cap the arenas (MALLOC_ARENA_MAX=2), return free memory (malloc_trim), or use an allocator that returns it (jemalloc, tcmalloc).',
  },
  { series: 'host.driverMappedBytes', what: 'driver mappings (/dev/nvidia*)', read: driverMappedBytes, fix: DRIVER_FIX },
  { series: 'host.fileBytes', what: 'file-backed pages', read: fileBytes, fix: 'File pages are the page cache of mapped files (model weights read through mmap): the kernel reclaims them under pressure.' },
  { series: 'host.shmemBytes', what: 'shared memory', read: shmemBytes, fix: 'Shared memory (/dev/shm, IPC between workers) is freed only when its files are removed: look for leftover segments.' },
];

export function rssNotMalloc(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const rssPoints = seriesFrom(history, steady.from, rssBytes);
  const rss = byteShape(rssPoints, history)?.riseAtEnd ?? null;
  if (!ongoing(rss) || !mattersForHost(rss)) return null;
  const mallocPoints = within(seriesFrom(history, steady.from, mallocInUseBytes), rss);
  const mallocKnown = mallocPoints.length >= THRESHOLDS.minSamples && mallocPoints.length >= THRESHOLDS.knownShare * within(rssPoints, rss).length;
  // The heap: malloc in use where known, else all anonymous memory (the parts outside malloc
  // cannot be told from it then).
  const heapSeries = mallocKnown ? 'host.malloc.inUseBytes' : 'host.anonBytes';
  const heap = trend(mallocKnown ? mallocPoints : within(seriesFrom(history, steady.from, anonBytes), rss));
  if (heap.samples < THRESHOLDS.minSamples || heap.change > THRESHOLDS.flatShare * rss.rise) return null;
  // Driver mappings are file-backed pages, so host.fileBytes includes them: name the part that
  // grew most, and require it to carry at least half the growth.
  const candidates = (mallocKnown ? PARTS : PARTS.slice(2)).map((part): [Part, Trend] => [part, trend(within(seriesFrom(history, steady.from, part.read), rss))]);
  const known = candidates.filter(([, t]) => t.samples >= THRESHOLDS.minSamples);
  if (known.length === 0) return null;
  const [part, main] = known.reduce((a, b) => (b[1].change > a[1].change ? b : a));
  if (main.change < THRESHOLDS.carryShare * rss.rise) return null;
  const anonMappings = history.points.at(-1)?.process.host?.anonMappingsBytes;
  const runway = containerRunway(history, rss.slopePerHour);
  return makeFinding(history, {
    id: 'rss-not-malloc',
    severity: runway.severity,
    confidence: (0.5 + 0.3 * (rss.fit ?? 0) + 0.2 * Math.min(1, main.change / rss.rise)) * lengthFactor(within(rssPoints, rss)),
    title: 'RSS grows outside the heap',
    summary:
      `RSS grew ${bytes(rss.rise)} in ${duration(rss.to - rss.from)} (${perHour(rss.slopePerHour)}, ${fitText(rss.fit)}) and is still growing, mostly in ${part.what} (${bytes(main.change)}), ` +
      `while ${mallocKnown ? "malloc's memory in use" : 'the heap (anonymous RSS)'} changed ${bytes(heap.change)}${startupNote(steady)}${workNote(history, rss, rssPoints)}: ` +
      `not a malloc leak, and heap profilers will show nothing.${runway.text}`,
    at: rss.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [
      evidenceOf('host.rssBytes', 'bytes', riseTrend(rss), 'resident set'),
      evidenceOf(part.series, 'bytes', main, `${part.what}: ${bytes(main.first)} → ${bytes(main.last)}${part.read === outsideMallocBytes && typeof anonMappings === 'number' ? `; anonymous mappings now hold ${bytes(anonMappings)}` : ''}`),
      evidenceOf(heapSeries, 'bytes', heap, mallocKnown ? "malloc in use (glibc's own figure): flat" : 'heap: flat'),
    ],
    fix: `Stop chasing a heap leak. ${part.fix}`,
  });
}
