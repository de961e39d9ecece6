/**
 * CUDA graph / driver memory creep (the Mistral case): the process's driver figure grows, and
 * goes on growing at the end of the window, all of it outside PyTorch's allocator while the
 * allocator's reserved bytes stay flat. Each new prompt length vLLM captures a graph for adds
 * memory that no heap or allocator profiler sees.
 */
import { driverBytes, outsideAllocatorBytes, privatePoolBytes, reservedBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForDevice, ongoing, seriesFrom } from '../growth.js';
import { evidenceOf, freeMemoryRunway, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { ProcessHistory } from '../process-history.js';
import { idleGrowthIn } from './idle-growth.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within } from '../trend.js';
import { workNote } from '../work-note.js';
import { bytes, duration, fitText, perHour } from '../wording.js';

export function cudaGraphCreep(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const driver = seriesFrom(history, steady.from, driverBytes);
  const reserved = seriesFrom(history, steady.from, reservedBytes);
  const outside = seriesFrom(history, steady.from, outsideAllocatorBytes);
  // Without the allocator layer over most of the window this is device-memory-growth's to name.
  if (reserved.length < THRESHOLDS.knownShare * driver.length || outside.length < THRESHOLDS.minSamples) return null;
  const rise = byteShape(driver, history)?.riseAtEnd ?? null;
  if (!ongoing(rise) || !mattersForDevice(rise, history)) return null;
  const r = trend(within(reserved, rise));
  const o = trend(within(outside, rise));
  if (Math.abs(r.change) > Math.max(THRESHOLDS.floorBytes, THRESHOLDS.flatShare * rise.rise)) return null;
  if (o.change < (1 - THRESHOLDS.flatShare) * rise.rise) return null;
  if (idleGrowthIn(history, steady) !== null) return null;

  const runway = freeMemoryRunway(history, rise.slopePerHour);
  const pools = trend(within(seriesFrom(history, steady.from, privatePoolBytes), rise));
  const evidence = [
    evidenceOf('gaps.outsideAllocatorBytes', 'bytes', o, `memory outside the allocator: ${bytes(o.first)} → ${bytes(o.last)}`),
    evidenceOf('layers.driverBytes', 'bytes', riseTrend(rise), `what the driver says the process holds, rising from ${new Date(rise.from).toISOString()} to the end`),
    evidenceOf('layers.allocator.reservedBytes', 'bytes', r, 'PyTorch reserved: flat'),
  ];
  if (pools.samples >= THRESHOLDS.minSamples) evidence.push(evidenceOf('layers.allocator.privatePoolBytes', 'bytes', pools, 'CUDA graph private pools inside the allocator'));
  return makeFinding(history, {
    id: 'cuda-graph-creep',
    severity: runway.severity,
    confidence: (0.5 + 0.5 * (rise.fit ?? 0)) * lengthFactor(within(driver, rise)),
    title: 'CUDA graph / driver memory creeping outside the allocator',
    summary:
      `Memory outside PyTorch's allocator grew ${bytes(o.change)} in ${duration(rise.to - rise.from)} (${perHour(rise.slopePerHour)}, ${fitText(rise.fit)}) and is still growing, while reserved stayed at ${bytes(r.last)}${startupNote(steady)}${workNote(history, rise, driver)}: ` +
      'driver-side memory such as CUDA graphs captured for new shapes, invisible to heap and allocator profilers' +
      runway.ending,
    at: rise.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence,
    fix:
      'Capture a fixed, small set of CUDA graph sizes and pad requests to them: limit prompt/batch-length variation ' +
      '(vLLM cudagraph_capture_sizes, max_seq_len_to_capture), prefetch the common lengths at start-up, or run rare shapes eagerly (enforce_eager). ' +
      'Heap profilers (heaptrack, tracemalloc) will not show this memory.',
  });
}
