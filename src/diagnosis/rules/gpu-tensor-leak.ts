/**
 * GPU tensor leak: live tensors (the allocator's allocated bytes) grow and go on growing, in a
 * way the load does not explain. vLLM allocates its KV cache once, so under steady serving
 * allocated moves only with the activations of the batch in flight; tensors that outlive their
 * requests (a cache keyed by request, tensors kept for logging) add up. The load's part is
 * measured by a least-squares fit of allocated bytes on time and requests running together: the
 * time term is the part the load leaves unexplained.
 */
import type { Finding } from '../finding-schema.js';
import { byteShape, deviceAtEnd, hoursToFull, mattersForDevice, ongoing, seriesFrom } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { Point, ProcessHistory } from '../process-history.js';
import { bucketed } from '../series-shape.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within } from '../trend.js';
import { bytes, duration, fitText, perHour } from '../wording.js';

const HOUR_MS = 3_600_000;

/** Solves the 3x3 system m x = b (Cramer's rule); null when it is singular. */
function solve3(m: number[][], b: number[]): number[] | null {
  const det = (a: number[][]) =>
    a[0]![0]! * (a[1]![1]! * a[2]![2]! - a[1]![2]! * a[2]![1]!) - a[0]![1]! * (a[1]![0]! * a[2]![2]! - a[1]![2]! * a[2]![0]!) + a[0]![2]! * (a[1]![0]! * a[2]![1]! - a[1]![1]! * a[2]![0]!);
  const d = det(m);
  if (Math.abs(d) < 1e-12) return null;
  return [0, 1, 2].map((k) => det(m.map((row, i) => row.map((v, j) => (j === k ? b[i]! : v)))) / d);
}

/**
 * The growth per hour that time alone carries once requests running are accounted for: the
 * coefficient of t in allocated ~ a + b t + c running, over buckets both series share.
 */
function unexplainedPerHour(allocated: readonly Point[], running: readonly Point[]): number | null {
  const width = bucketed(allocated, 0).widthMs;
  const t0 = allocated[0]!.t;
  const a = bucketed(allocated, 0, width).points;
  const r = new Map(bucketed(running, 0, width).points.map((p) => [Math.floor((p.t - t0) / width), p.v]));
  // Bytes taken from the first bucket's level: the same fit, without sums of 1e21.
  const rows = a.flatMap((p) => {
    const load = r.get(Math.floor((p.t - t0) / width));
    return load === undefined ? [] : [[1, (p.t - t0) / HOUR_MS, load, p.v - a[0]!.v] as const];
  });
  if (rows.length < THRESHOLDS.minSamples) return null;
  const m = [0, 1, 2].map((i) => [0, 1, 2].map((j) => rows.reduce((sum, row) => sum + row[i]! * row[j]!, 0)));
  const b = [0, 1, 2].map((i) => rows.reduce((sum, row) => sum + row[i]! * row[3], 0));
  return solve3(m, b)?.[1] ?? null;
}

export function gpuTensorLeak(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const allocated = seriesFrom(history, steady.from, (p) => p.process.layers.allocator?.allocatedBytes);
  const rise = byteShape(allocated)?.riseAtEnd ?? null;
  if (!ongoing(rise) || !mattersForDevice(rise, history)) return null;
  const running = within(seriesFrom(history, steady.from, (p) => p.process.layers.framework?.requestsRunning), rise);
  const span = within(allocated, rise);
  const loadKnown = running.length >= THRESHOLDS.knownShare * span.length;
  const unexplained = loadKnown ? unexplainedPerHour(span, running) : null;
  const hours = (rise.to - rise.from) / HOUR_MS;
  if (loadKnown && (unexplained === null || unexplained * hours < (1 - THRESHOLDS.flatShare) * rise.rise)) return null;

  const { freeBytes } = deviceAtEnd(history);
  const toFull = hoursToFull(freeBytes, rise.slopePerHour);
  const load = trend(running);
  const evidence = [evidenceOf('layers.allocator.allocatedBytes', 'bytes', riseTrend(rise), `live tensors, rising to the end`)];
  if (loadKnown) evidence.push(evidenceOf('layers.framework.requestsRunning', 'count', load, `requests running: ${load.first.toFixed(0)} → ${load.last.toFixed(0)}; the load explains ${bytes(Math.max(0, rise.rise - unexplained! * hours))} of the growth`));
  return makeFinding(history, {
    id: 'gpu-tensor-leak',
    severity: toFull !== null && toFull < 24 ? 'critical' : 'warning',
    confidence: (loadKnown ? 0.55 : 0.4) + 0.4 * (rise.fit ?? 0) * lengthFactor(span),
    title: 'Live GPU tensors growing (tensor leak)',
    summary:
      `Allocated memory (live tensors) grew ${bytes(rise.rise)} in ${duration(rise.to - rise.from)} (${perHour(rise.slopePerHour)}, ${fitText(rise.fit)}) and is still growing${startupNote(steady)}` +
      (loadKnown ? ', beyond what the requests running explain' : '; no request figures to weigh the load against') +
      ': tensors outlive the work that made them' +
      (toFull !== null ? `; at this rate the device's ${bytes(freeBytes!)} free lasts ${toFull < 1 ? `${Math.round(toFull * 60)} min` : `${toFull.toFixed(1)} h`}.` : '.'),
    at: rise.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence,
    fix:
      'Find the tensors that outlive their requests: torch.cuda.memory._record_memory_history(), let it grow, torch.cuda.memory._dump_snapshot(), ' +
      'then `gpu-layers snapshot` lists the allocation sites holding the most. Usual causes: caches keyed by request or prompt, tensors kept for logging or metrics, retained autograd graphs (missing no_grad).',
  });
}
