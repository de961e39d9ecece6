/**
 * GPU tensor leak: live tensors (the allocator's allocated bytes) grow and go on growing, in a
 * way the load does not explain. vLLM allocates its KV cache once, so under steady serving
 * allocated moves only with the activations of the batch in flight; tensors that outlive their
 * requests (a cache keyed by request, tensors kept for logging) add up. The load's part is
 * measured by load-fit.ts.
 */
import { allocatedBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForDevice, ongoing, seriesFrom } from '../growth.js';
import { evidenceOf, freeMemoryRunway, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import { loadExplains } from '../load-fit.js';
import type { ProcessHistory } from '../process-history.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, trend, within } from '../trend.js';
import { workNote } from '../work-note.js';
import { bytes, duration, fitText, perHour } from '../wording.js';

export function gpuTensorLeak(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const allocated = seriesFrom(history, steady.from, allocatedBytes);
  const rise = byteShape(allocated, history)?.riseAtEnd ?? null;
  if (!ongoing(rise) || !mattersForDevice(rise, history)) return null;
  const span = within(allocated, rise);
  const load = loadExplains(history, steady.from, span, rise);
  if (load.known && load.unexplainedBytes < (1 - THRESHOLDS.flatShare) * rise.rise) return null;

  const runway = freeMemoryRunway(history, rise.slopePerHour);
  const evidence = [evidenceOf('layers.allocator.allocatedBytes', 'bytes', riseTrend(rise), `live tensors, rising to the end`)];
  if (load.known) {
    const running = trend(load.running);
    evidence.push(evidenceOf('layers.framework.requestsRunning', 'count', running, `requests running: ${running.first.toFixed(0)} → ${running.last.toFixed(0)}; the load explains ${bytes(Math.max(0, rise.rise - load.unexplainedBytes))} of the growth`));
  }
  return makeFinding(history, {
    id: 'gpu-tensor-leak',
    severity: runway.severity,
    confidence: ((load.known ? 0.55 : 0.4) + 0.4 * (rise.fit ?? 0)) * lengthFactor(span),
    title: 'Live GPU tensors growing (tensor leak)',
    summary:
      `Allocated memory (live tensors) grew ${bytes(rise.rise)} in ${duration(rise.to - rise.from)} (${perHour(rise.slopePerHour)}, ${fitText(rise.fit)}) and is still growing${startupNote(steady)}${workNote(history, rise, allocated)}` +
      (load.known ? ', beyond what the requests running explain' : `; ${load.unknownBecause}`) +
      ': tensors outlive the work that made them' +
      runway.ending,
    at: rise.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence,
    fix:
      'Find the tensors that outlive their requests: torch.cuda.memory._record_memory_history(), let it grow, torch.cuda.memory._dump_snapshot(), ' +
      'then `gpu-layers snapshot` lists the allocation sites holding the most. Usual causes: caches keyed by request or prompt, tensors kept for logging or metrics, retained autograd graphs (missing no_grad).',
  });
}
