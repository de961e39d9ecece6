/**
 * Allocator / KV-cache fragmentation at low load (the Kubenatives 3 AM case): prefill/free
 * cycles at few requests leave free memory split between live blocks; inactive-split bytes and
 * reserved − allocated grow, alloc retries climb, and the OOM comes when the largest free block
 * falls below the next prefill even though plenty is free in total.
 */
import type { Finding } from '../finding-schema.js';
import { evidenceOf, lengthFactor, makeFinding } from '../make-finding.js';
import { seriesOf, type ProcessHistory } from '../process-history.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, fitText, perHour } from '../wording.js';

/** The largest rise of allocated bytes between two readings: the biggest burst (a prefill) seen. */
function largestBurst(points: readonly { v: number }[]): number {
  let largest = 0;
  for (let i = 1; i < points.length; i++) largest = Math.max(largest, points[i]!.v - points[i - 1]!.v);
  return largest;
}

export function allocatorFragmentation(history: ProcessHistory): Finding | null {
  const noise = THRESHOLDS.noiseBytes;
  const whole = seriesOf(history, (p) => p.process.layers.allocator?.inactiveSplitBytes);
  if (whole.length < THRESHOLDS.minSamples) return null;
  // Judge from the reading before the first rise on: fragmentation starts when the load drops,
  // and the load before it says nothing about the cause.
  const begin = Math.max(0, whole.findIndex((p) => p.t >= trend(whole, noise).firstRiseAt));
  const since = begin === 0 ? -Infinity : whole[begin]!.t;
  const split = whole.slice(begin);
  if (split.length < THRESHOLDS.minSamples) return null;
  const s = trend(split, noise);
  if (s.change < THRESHOLDS.growthBytes || (s.fit ?? 0) < 0.5 || s.rises < THRESHOLDS.minRises) return null;
  const cachedSeries = seriesOf(history, (p) => {
    if (p.t < since) return null;
    const a = p.process.layers.allocator;
    return a?.reservedBytes != null && a.allocatedBytes != null ? a.reservedBytes - a.allocatedBytes : null;
  });
  const cached = trend(cachedSeries, noise);
  if (cached.change <= 0) return null;
  const allocatedSeries = seriesOf(history, (p) => (p.t < since ? null : p.process.layers.allocator?.allocatedBytes));
  const allocated = trend(allocatedSeries, noise);
  // Live data growing as fast is a leak of tensors, not fragmentation.
  if (allocated.change > 0.5 * s.change) return null;

  const retries = seriesOf(history, (p) => (p.t < since ? null : p.process.layers.allocator?.numAllocRetries));
  const ooms = seriesOf(history, (p) => (p.t < since ? null : p.process.layers.allocator?.numOoms));
  const retriesRose = retries.length >= 2 ? retries[retries.length - 1]!.v - retries[0]!.v : 0;
  const oomsRose = ooms.length >= 2 ? ooms[ooms.length - 1]!.v - ooms[0]!.v : 0;
  const running = seriesOf(history, (p) => (p.t < since ? null : p.process.layers.framework?.requestsRunning));
  const meanRunning = running.length > 0 ? running.reduce((sum, p) => sum + p.v, 0) / running.length : null;
  const lowLoad = meanRunning !== null && meanRunning <= THRESHOLDS.lowLoadRunning;

  const largestFree = seriesOf(history, (p) => (p.t < since ? null : p.process.layers.allocator?.largestFreeBlockBytes));
  const nextPrefill = largestBurst(allocatedSeries);
  const lastLargest = largestFree.length > 0 ? largestFree[largestFree.length - 1]! : null;
  const wontFit = lastLargest !== null && nextPrefill > 0 && lastLargest.v < nextPrefill;

  const evidence = [
    evidenceOf('layers.allocator.inactiveSplitBytes', 'bytes', s, `free memory trapped in split segments: ${bytes(s.first)} → ${bytes(s.last)}`),
    evidenceOf('layers.allocator.reservedBytes - allocatedBytes', 'bytes', cached, 'reserved but not allocated'),
    evidenceOf('layers.allocator.allocatedBytes', 'bytes', allocated, 'live tensors: not growing with it'),
  ];
  if (retries.length >= THRESHOLDS.minSamples) evidence.push(evidenceOf('layers.allocator.numAllocRetries', 'count', trend(retries, 0), `${retriesRose} alloc retries (cudaMalloc failed, cache flushed, retried) in the window`));
  if (running.length >= THRESHOLDS.minSamples) evidence.push(evidenceOf('layers.framework.requestsRunning', 'count', trend(running, 0), `mean ${meanRunning!.toFixed(1)} requests running: ${lowLoad ? 'low load' : 'not low load'}`));
  if (largestFree.length >= THRESHOLDS.minSamples) {
    evidence.push(evidenceOf('layers.allocator.largestFreeBlockBytes', 'bytes', trend(largestFree, noise), `largest free block ${bytes(lastLargest!.v)} against the largest burst seen, ${bytes(nextPrefill)}`));
  }

  const oomRisk = wontFit || oomsRose > 0;
  const riskText = wontFit
    ? ` The largest free block (${bytes(lastLargest!.v)}) is now smaller than the largest burst seen (${bytes(nextPrefill)}): the next such prefill cannot be served without growing the pool, and OOMs if the device is full.`
    : oomsRose > 0
      ? ` ${oomsRose} OOM(s) in the window.`
      : '';
  return makeFinding(history, {
    id: 'allocator-fragmentation',
    severity: oomRisk ? 'critical' : 'warning',
    confidence: (0.4 + 0.2 * (s.fit ?? 0) + (retriesRose > 0 ? 0.2 : 0) + (lowLoad ? 0.2 : 0)) * lengthFactor(split),
    title: lowLoad ? 'Allocator fragmentation at low load' : 'Allocator fragmentation',
    summary:
      `Inactive-split memory grew ${bytes(s.change)} (${perHour(s.slopePerHour)}, ${fitText(s.fit)}) and reserved − allocated ${bytes(cached.change)} while live tensors changed ${bytes(allocated.change)}` +
      (retriesRose > 0 ? `; ${retriesRose} alloc retries` : '') +
      (meanRunning !== null ? `; ${meanRunning.toFixed(1)} requests running on average` : '') +
      '.' +
      riskText,
    at: s.firstRiseAt,
    ...(begin > 0 ? { windowFrom: since } : {}),
    evidence,
    fix:
      'Align KV-cache block sizes with the allocator\'s chunk size and pool the KV cache per model config; let freed prefill memory be reused ' +
      '(PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, or max_split_size_mb). Raising the memory limit only delays the OOM. ' +
      'Confirm with a snapshot: torch.cuda.memory._dump_snapshot(), then `gpu-layers snapshot`.',
  });
}
