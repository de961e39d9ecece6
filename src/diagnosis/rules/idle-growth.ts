/**
 * Memory growing while idle (the postmortems' second alert): the process's device memory rises
 * across stretches where its vLLM server is idle: by the alert's measure where vLLM's counters
 * are known (fewer than 0.01 requests a second finishing, so the 3 AM trickle is idle:
 * work-done.ts), else no request running or waiting. Nothing should allocate then; it is
 * fragmentation being exposed or a leak in background work. Any rise beyond
 * noise and the byte floor counts, whatever its share of the device: idle memory should not move
 * at all. A single step (a library loaded once) is not growth.
 */
import { driverBytes, requestsFinished } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { idleGrowth, mostlyIdle, seriesFrom, type IdleGrowth } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding, startupNote } from '../make-finding.js';
import type { Point, ProcessHistory } from '../process-history.js';
import { noiseOf, stepIn } from '../series-shape.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, duration, perHour } from '../wording.js';

const HOUR_MS = 3_600_000;

/**
 * The growth this rule names, or null. The other rules on the driver figure (cuda-graph-creep,
 * device-memory-growth) stand aside when there is one: growth while idle is named once.
 */
export function idleGrowthIn(history: ProcessHistory, steady: SteadyWindow): { driver: Point[]; growth: IdleGrowth } | null {
  const driver = seriesFrom(history, steady.from, driverBytes);
  if (driver.length < THRESHOLDS.minSamples) return null;
  const noise = noiseOf(driver.map((p) => p.v));
  const minRise = Math.max(THRESHOLDS.floorBytes, THRESHOLDS.significance * noise);
  const growth = idleGrowth(history, steady.from, driverBytes, noise);
  if (!mostlyIdle(growth, minRise)) return null;
  const step = stepIn(driver, Math.max(THRESHOLDS.stepWithinMs, 2 * history.intervalMs), minRise, THRESHOLDS.stepFlatMs);
  if (step !== null && step.rise >= THRESHOLDS.carryShare * growth.idleRise) return null;
  return { driver, growth };
}

export function idleGrowthFinding(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const found = idleGrowthIn(history, steady);
  if (found === null) return null;
  const { driver, growth } = found;
  const d = trend(driver);
  const total = growth.idleRise + growth.busyRise;
  const idleRate = growth.risingIdleMs > 0 ? (growth.idleRise / growth.risingIdleMs) * HOUR_MS : 0;
  const byCounters = history.points.some((p) => requestsFinished(p) != null);
  const idleMeans = byCounters
    ? `while idle (under ${THRESHOLDS.idleRequestsPerSecond} requests a second finishing over ${duration(THRESHOLDS.idleWindowMs)}, under ${THRESHOLDS.idleMeanRunning} in flight on average)`
    : 'with no request running or waiting';
  return makeFinding(history, {
    id: 'idle-growth',
    severity: 'warning',
    confidence: Math.min(1, 0.5 + 0.5 * (growth.idleRise / Math.max(1, total))) * lengthFactor(driver),
    title: 'Device memory growing while idle',
    summary:
      `Device memory rose ${bytes(growth.idleRise)} during ${duration(growth.idleMs)} ${idleMeans} (${perHour(idleRate)} while idle), ` +
      `${Math.round((growth.idleRise / Math.max(1, total)) * 100)}% of all its growth${startupNote(steady)}.`,
    at: growth.firstIdleRiseAt ?? driver[0]!.t,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [
      { ...evidenceOf('layers.driverBytes', 'bytes', d, `${bytes(growth.idleRise)} of ${bytes(total)} growth came while idle (rising over ${duration(growth.risingIdleMs)} of ${duration(growth.idleMs)} idle)`), slopePerHour: idleRate },
    ],
    fix:
      'Nothing should allocate with no request in flight. Take an allocator snapshot while idle (torch.cuda.memory._dump_snapshot(), then `gpu-layers snapshot`): ' +
      'many small free blocks between live ones is fragmentation (align KV block sizes, expandable_segments); growing live blocks is a leak in background work (profile it).',
  });
}
