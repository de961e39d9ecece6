/**
 * Device memory growth with the layer unknown: the driver's figure for the process grows and
 * goes on growing, but the allocator layer was not measured (no companion in the process, or
 * its file stale most of the time), so which layer grows cannot be told. Its own id rather than
 * a pattern's with lower confidence: each pattern names a cause only the allocator layer can
 * show (outside the allocator: CUDA graphs; live tensors: a leak; the cache: fragmentation), and
 * a guess at one would send the reader down the wrong path. It names the symptom, what is
 * unknown, and the one command that would split it.
 */
import { driverBytes, reservedWithDriver } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { byteShape, mattersForDevice, ongoing, seriesFrom } from '../growth.js';
import { loadExplains } from '../load-fit.js';
import { evidenceOf, freeMemoryRunway, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { ProcessHistory } from '../process-history.js';
import { idleGrowthIn } from './idle-growth.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { riseTrend, within } from '../trend.js';
import { workNote } from '../work-note.js';
import { bytes, duration, fitText, perHour } from '../wording.js';

export function deviceMemoryGrowth(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const driver = seriesFrom(history, steady.from, driverBytes);
  const allocatorKnown = seriesFrom(history, steady.from, reservedWithDriver).length;
  if (driver.length < THRESHOLDS.minSamples || allocatorKnown >= THRESHOLDS.knownShare * driver.length) return null;
  const rise = byteShape(driver, history)?.riseAtEnd ?? null;
  if (!ongoing(rise) || !mattersForDevice(rise, history)) return null;
  if (idleGrowthIn(history, steady) !== null) return null;
  // The allocator's cache warming up as the load climbs moves the driver figure too: only growth
  // the requests running do not explain counts.
  const load = loadExplains(history, steady.from, within(driver, rise), rise, true);
  if (load.known && load.unexplainedBytes < (1 - THRESHOLDS.flatShare) * rise.rise) return null;

  const why = history.points[history.points.length - 1]!.process.allocatorReason ?? undefined;
  const runway = freeMemoryRunway(history, rise.slopePerHour);
  return makeFinding(history, {
    id: 'device-memory-growth',
    severity: runway.severity,
    confidence: (0.5 + 0.4 * (rise.fit ?? 0)) * lengthFactor(within(driver, rise)),
    title: 'Device memory growing, layer unknown',
    summary:
      `The driver's figure for this process grew ${bytes(rise.rise)} in ${duration(rise.to - rise.from)} (${perHour(rise.slopePerHour)}, ${fitText(rise.fit)}) and is still growing${startupNote(steady)}${workNote(history, rise, driver)}. ` +
      `The allocator layer was not measured${why !== undefined ? ` (${why})` : ''}, so whether the growth is live tensors, the allocator's cache or memory outside PyTorch (CUDA graphs, NCCL) cannot be told` +
      runway.ending,
    at: rise.from,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [evidenceOf('layers.driverBytes', 'bytes', riseTrend(rise), `the driver layer, rising to the end; allocator known for ${allocatorKnown} of ${driver.length} readings`)],
    fix:
      'Split it: start the workload with the companion (`gpu-layers companion` prints the two environment variables), record again and diagnose: ' +
      'growth outside the allocator is CUDA graphs or a library, growth of live tensors a leak, growth of the cache fragmentation, each with its own fix.',
  });
}
