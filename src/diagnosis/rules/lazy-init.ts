/**
 * Lazy initialisation (the NIXL case): one step in the process's device memory at its first
 * requests, flat before and after. Not a leak, but it looks like one to a threshold alert and it
 * eats headroom capacity planning did not count. A step is a rise completed within a couple of
 * minutes, whatever the sampling interval (a 25 s initialisation sampled every 5 s is a step).
 */
import { driverBytes, outsideAllocatorBytes } from '../fields.js';
import type { Finding } from '../finding-schema.js';
import { seriesFrom } from '../growth.js';
import { evidenceOf, makeFinding, startupNote } from '../make-finding.js';
import { idleAt, type ProcessHistory } from '../process-history.js';
import { noiseOf, stepIn } from '../series-shape.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, duration } from '../wording.js';

export function lazyInit(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const driver = seriesFrom(history, steady.from, driverBytes);
  if (driver.length < THRESHOLDS.minSamples) return null;
  const within = Math.max(THRESHOLDS.stepWithinMs, 2 * history.intervalMs);
  const minRise = Math.max(THRESHOLDS.floorBytes, THRESHOLDS.significance * noiseOf(driver.map((p) => p.v)));
  const step = stepIn(driver, within, minRise, THRESHOLDS.stepFlatMs);
  if (step === null) return null;
  const steadyPoints = history.points.filter((p) => p.t >= steady.from);
  const firstBusy = steadyPoints.find((p) => idleAt(p) === false);
  const loadKnown = steadyPoints.some((p) => idleAt(p) !== null);
  // With request figures, the step must come with the first requests.
  if (loadKnown && (firstBusy === undefined || step.at < firstBusy.t - within || step.startedAt > firstBusy.t + within)) return null;
  const tied = loadKnown;
  const outside = trend(seriesFrom(history, steady.from, outsideAllocatorBytes));
  const where = outside.samples >= THRESHOLDS.minSamples && outside.change >= THRESHOLDS.carryShare * step.rise ? ' outside the allocator' : '';
  return makeFinding(history, {
    id: 'lazy-init',
    severity: 'info',
    confidence: tied ? 0.9 : 0.5,
    title: 'One-time step at the first requests (lazy initialisation)',
    summary:
      `Device memory stepped up ${bytes(step.rise)}${where} ${tied ? 'with the first requests' : 'once'} and stayed flat for ${duration(step.flatAfterMs)} afterwards${startupNote(steady)}: ` +
      'a one-time initialisation, not a leak' +
      (tied ? '.' : ' (no request figures to tie it to the first requests).'),
    at: step.at,
    ...(steady.startupExcluded ? { windowFrom: steady.from } : {}),
    evidence: [evidenceOf('layers.driverBytes', 'bytes', trend(driver), `one step of ${bytes(step.rise)} within ${duration(step.at - step.startedAt)}; flat for ${duration(step.flatBeforeMs)} before and ${duration(step.flatAfterMs)} after`)],
    fix:
      'Initialise communication and kernel libraries (NIXL, NCCL, cuBLAS workspaces) at start-up, e.g. with warm-up requests, ' +
      'so the memory is visible before serving and headroom planning counts it; do not alert on this step.',
  });
}
