/**
 * Allocator / KV-cache fragmentation at low load (the Kubenatives 3 AM case): prefill/free
 * cycles at few requests leave free memory split between live blocks; inactive-split bytes and
 * reserved − allocated grow, alloc retries climb, and the OOM comes when the largest free block
 * falls below the next prefill even though plenty is free in total. The split memory stays
 * trapped after the growth stops, so unlike creep it need not still grow at the end: it must
 * still be there. Where the growth starts comes from the series' own change points, not from
 * its first rise above some byte count.
 */
import { allocatedBytes, cachedBytes, inactiveSplitBytes, largestFreeBlockBytes, numAllocRetries, numOoms, promptTokens, requestsRunning } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForDevice, seriesFrom, significant } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import { prefillTiming } from '../prefill-timing.js';
import type { ProcessHistory } from '../process-history.js';
import { largestRiseWithin } from '../series-shape.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within } from '../trend.js';
import { workNote } from '../work-note.js';
import { bytes, duration, fitText, percent, perHour } from '../wording.js';

export function allocatorFragmentation(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const split = seriesFrom(history, steady.from, inactiveSplitBytes);
  const shape = byteShape(split, history);
  if (shape === null) return null;
  // The largest rise that still holds at the end: fragments stay trapped until freed.
  const candidates = shape.rises.filter((r) => significant(r) && mattersForDevice(r, history) && r.to - r.from >= THRESHOLDS.minGrowthMs && r.largestJumpShare <= THRESHOLDS.carryShare);
  const s = candidates.reduce<(typeof candidates)[number] | null>((best, r) => (best === null || r.rise > best.rise ? r : best), null);
  if (s === null) return null;
  const endLevel = shape.buckets.points.slice(-3).reduce((sum, p, _, all) => sum + p.v / all.length, 0);
  if (endLevel < THRESHOLDS.fragmentationKeptShare * s.last) return null;
  const since = s.from;
  const cachedSeries = seriesFrom(history, since, cachedBytes);
  const cached = trend(within(cachedSeries, s));
  if (cached.change <= 0) return null;
  const allocatedSeries = seriesFrom(history, since, allocatedBytes);
  const allocated = trend(within(allocatedSeries, s));
  // Live data growing as fast is a leak of tensors, not fragmentation.
  if (allocated.change > THRESHOLDS.carryShare * s.rise) return null;

  const retries = within(seriesFrom(history, since, numAllocRetries), s);
  const ooms = seriesFrom(history, since, numOoms);
  const retriesRose = retries.length >= 2 ? retries[retries.length - 1]!.v - retries[0]!.v : 0;
  const oomsRose = ooms.length >= 2 ? ooms[ooms.length - 1]!.v - ooms[0]!.v : 0;
  const running = within(seriesFrom(history, since, requestsRunning), s);
  const meanRunning = running.length > 0 ? running.reduce((sum, p) => sum + p.v, 0) / running.length : null;
  const lowLoad = meanRunning !== null && meanRunning <= THRESHOLDS.lowLoadRunning;

  const largestFree = seriesFrom(history, since, largestFreeBlockBytes);
  // The biggest burst seen (a prefill): the largest rise of live tensors within a step's time.
  const nextPrefill = Math.max(0, largestRiseWithin(allocatedSeries, Math.max(THRESHOLDS.stepWithinMs, 2 * history.intervalMs))?.rise ?? 0);
  const lastLargest = largestFree.length > 0 ? largestFree[largestFree.length - 1]! : null;
  const wontFit = lastLargest !== null && nextPrefill > 0 && lastLargest.v < nextPrefill;

  const evidence = [
    evidenceOf('layers.allocator.inactiveSplitBytes', 'bytes', riseTrend(s), `free memory trapped in split segments: ${bytes(s.first)} → ${bytes(s.last)}, still ${bytes(endLevel)} at the end`),
    evidenceOf('layers.allocator.reservedBytes - allocatedBytes', 'bytes', cached, 'reserved but not allocated'),
    evidenceOf('layers.allocator.allocatedBytes', 'bytes', allocated, 'live tensors: not growing with it'),
  ];
  if (retries.length >= THRESHOLDS.minSamples) evidence.push(evidenceOf('layers.allocator.numAllocRetries', 'count', trend(retries), `${retriesRose} alloc retries (cudaMalloc failed, cache flushed, retried) while it grew`));
  if (running.length >= THRESHOLDS.minSamples) evidence.push(evidenceOf('layers.framework.requestsRunning', 'count', trend(running), `mean ${meanRunning!.toFixed(1)} requests running: ${lowLoad ? 'low load' : 'not low load'}`));
  if (largestFree.length >= THRESHOLDS.minSamples) {
    evidence.push(evidenceOf('layers.allocator.largestFreeBlockBytes', 'bytes', trend(largestFree), `largest free block ${bytes(lastLargest!.v)} against the largest burst seen, ${bytes(nextPrefill)}`));
  }

  // The write-up's signal: does the trapped memory come at prefills, and at prefills after idle?
  const timing = prefillTiming(history, split, s.from, s.to);
  // Shares of the net change over the rise's readings (the three classes add up to it).
  const net = timing === null ? 0 : timing.afterIdle + timing.otherPrefill + timing.noPrefill;
  const afterIdleShare = timing === null || net <= 0 ? null : timing.afterIdle / net;
  const atPrefillShare = timing === null || net <= 0 ? null : (timing.afterIdle + timing.otherPrefill) / net;
  const afterIdle = afterIdleShare !== null && afterIdleShare >= THRESHOLDS.carryShare;
  const timingText =
    timing === null || afterIdleShare === null || atPrefillShare === null
      ? ''
      : `; ${percent(atPrefillShare)} of it came in intervals with a prefill, ${percent(afterIdleShare)} at prefills after ${duration(THRESHOLDS.burstAfterIdleMs)} or more without one ` +
        `(${timing.intervals.afterIdle} such of ${timing.intervals.afterIdle + timing.intervals.otherPrefill + timing.intervals.noPrefill} intervals)`;
  if (afterIdleShare !== null && atPrefillShare !== null) {
    evidence.push(
      evidenceOf('layers.framework.counters.promptTokens', 'count', trend(within(seriesFrom(history, since, promptTokens), s)), `prefills: ${percent(atPrefillShare)} of the trapped memory came at one, ${percent(afterIdleShare)} at one after idle`),
    );
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
    confidence: (0.4 + 0.2 * (s.fit ?? 0) + (retriesRose > 0 ? 0.2 : 0) + (lowLoad ? 0.2 : 0) + (afterIdle ? 0.1 : 0)) * lengthFactor(within(split, s)),
    title: afterIdle ? 'Allocator fragmentation at prefills after idle' : lowLoad ? 'Allocator fragmentation at low load' : 'Allocator fragmentation',
    summary:
      `Inactive-split memory grew ${bytes(s.rise)} in ${duration(s.to - s.from)} (${perHour(s.slopePerHour)}, ${fitText(s.fit)}) and reserved − allocated ${bytes(cached.change)} while live tensors changed ${bytes(allocated.change)}` +
      (retriesRose > 0 ? `; ${retriesRose} alloc retries` : '') +
      (meanRunning !== null ? `; ${meanRunning.toFixed(1)} requests running on average` : '') +
      timingText +
      workNote(history, s, split) +
      `${startupNote(steady)}.` +
      riskText,
    at: s.from,
    windowFrom: s.from,
    evidence,
    fix:
      'Align KV-cache block sizes with the allocator\'s chunk size and pool the KV cache per model config; let freed prefill memory be reused ' +
      '(PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True, or max_split_size_mb). Raising the memory limit only delays the OOM. ' +
      'Confirm with a snapshot: torch.cuda.memory._dump_snapshot(), then `gpu-layers snapshot`.',
  });
}
