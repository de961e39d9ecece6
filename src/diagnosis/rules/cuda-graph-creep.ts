/**
 * CUDA graph / driver memory creep (the Mistral case): the process's driver figure grows, all of
 * it outside PyTorch's allocator, while the allocator's reserved bytes stay flat. Each new
 * prompt length vLLM captures a graph for adds memory that no heap or allocator profiler sees.
 */
import type { Finding } from '../finding-schema.js';
import { idleGrowth, isGrowing, mostlyIdle } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding } from '../make-finding.js';
import { seriesOf, type ProcessHistory } from '../process-history.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, fitText, perHour } from '../wording.js';


export function cudaGraphCreep(history: ProcessHistory): Finding | null {
  const driver = seriesOf(history, (p) => p.process.layers.driverBytes);
  const reserved = seriesOf(history, (p) => p.process.layers.allocator?.reservedBytes);
  const outside = seriesOf(history, (p) => p.process.gaps.outsideAllocatorBytes);
  if (driver.length < THRESHOLDS.minSamples || reserved.length < THRESHOLDS.minSamples || outside.length < THRESHOLDS.minSamples) return null;
  const noise = THRESHOLDS.noiseBytes;
  const d = trend(driver, noise);
  if (!isGrowing(driver, d)) return null;
  const r = trend(reserved, noise);
  const o = trend(outside, noise);
  if (Math.abs(r.change) > Math.max(THRESHOLDS.growthBytes / 2, THRESHOLDS.flatShare * d.change)) return null;
  if (o.change < 0.75 * d.change) return null;
  if (mostlyIdle(idleGrowth(history, (p) => p.process.layers.driverBytes))) return null;

  const free = history.points[history.points.length - 1]!.deviceFreeBytes;
  const hoursToFull = free !== null && o.slopePerHour > 0 ? free / o.slopePerHour : null;
  const critical = hoursToFull !== null && hoursToFull < 24;
  const pools = trend(seriesOf(history, (p) => p.process.layers.allocator?.privatePoolBytes), noise);
  const evidence = [
    evidenceOf('gaps.outsideAllocatorBytes', 'bytes', o, `memory outside the allocator: ${bytes(o.first)} → ${bytes(o.last)} in ${o.rises} rises`),
    evidenceOf('layers.driverBytes', 'bytes', d, 'what the driver says the process holds'),
    evidenceOf('layers.allocator.reservedBytes', 'bytes', r, 'PyTorch reserved: flat'),
  ];
  if (pools.samples >= THRESHOLDS.minSamples) evidence.push(evidenceOf('layers.allocator.privatePoolBytes', 'bytes', pools, 'CUDA graph private pools inside the allocator'));
  return makeFinding(history, {
    id: 'cuda-graph-creep',
    severity: critical ? 'critical' : 'warning',
    confidence: (0.5 + 0.5 * (o.fit ?? 0)) * lengthFactor(driver),
    title: 'CUDA graph / driver memory creeping outside the allocator',
    summary:
      `Memory outside PyTorch's allocator grew ${bytes(o.change)} (${perHour(o.slopePerHour)}, ${fitText(o.fit)}, ${o.rises} rises) while reserved stayed at ${bytes(r.last)}: ` +
      'driver-side memory such as CUDA graphs captured for new shapes, invisible to heap and allocator profilers' +
      (hoursToFull !== null ? `; at this rate the device's ${bytes(free!)} free lasts ${hoursToFull < 1 ? `${Math.round(hoursToFull * 60)} min` : `${hoursToFull.toFixed(1)} h`}.` : '.'),
    at: o.firstRiseAt,
    evidence,
    fix:
      'Capture a fixed, small set of CUDA graph sizes and pad requests to them: limit prompt/batch-length variation ' +
      '(vLLM cudagraph_capture_sizes, max_seq_len_to_capture), prefetch the common lengths at start-up, or run rare shapes eagerly (enforce_eager). ' +
      'Heap profilers (heaptrack, tracemalloc) will not show this memory.',
  });
}

