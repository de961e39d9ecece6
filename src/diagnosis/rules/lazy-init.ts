/**
 * Lazy initialisation (the NIXL case): one step in the process's device memory at its first
 * requests, flat before and after. Not a leak, but it looks like one to a threshold alert and it
 * eats headroom capacity planning did not count.
 */
import type { Finding } from '../finding-schema.js';
import { evidenceOf, makeFinding } from '../make-finding.js';
import { idleAt, seriesOf, type ProcessHistory } from '../process-history.js';
import { THRESHOLDS } from '../thresholds.js';
import { singleStep, trend } from '../trend.js';
import { bytes, duration } from '../wording.js';

export function lazyInit(history: ProcessHistory): Finding | null {
  const driver = seriesOf(history, (p) => p.process.layers.driverBytes);
  if (driver.length < THRESHOLDS.minSamples) return null;
  const step = singleStep(driver, THRESHOLDS.growthBytes);
  if (step === null) return null;
  const firstBusy = history.points.find((p) => idleAt(p) === false);
  const loadKnown = history.points.some((p) => idleAt(p) !== null);
  // With request figures, the step must come with the first requests (within two readings).
  let tied = false;
  if (loadKnown) {
    if (firstBusy === undefined) return null;
    const busyIndex = driver.findIndex((p) => p.t >= firstBusy.t);
    const stepIndex = driver.findIndex((p) => p.t === step.at);
    if (busyIndex === -1 || stepIndex < busyIndex || stepIndex > busyIndex + 2) return null;
    tied = true;
  }
  const d = trend(driver, THRESHOLDS.noiseBytes);
  const outside = trend(seriesOf(history, (p) => p.process.gaps.outsideAllocatorBytes), THRESHOLDS.noiseBytes);
  const where = outside.samples >= THRESHOLDS.minSamples && outside.change >= 0.5 * step.rise ? ' outside the allocator' : '';
  const flatFor = history.points[history.points.length - 1]!.t - step.at;
  return makeFinding(history, {
    id: 'lazy-init',
    severity: 'info',
    confidence: tied ? 0.9 : 0.5,
    title: 'One-time step at the first requests (lazy initialisation)',
    summary:
      `Device memory stepped up ${bytes(step.rise)}${where} ${tied ? 'with the first requests' : 'once'} and stayed flat for ${duration(flatFor)} afterwards: ` +
      'a one-time initialisation, not a leak' +
      (tied ? '.' : ' (no request figures to tie it to the first requests).'),
    at: step.at,
    evidence: [evidenceOf('layers.driverBytes', 'bytes', d, `one step of ${bytes(step.rise)}; flat over ${step.before} readings before and ${step.after} after`)],
    fix:
      'Initialise communication and kernel libraries (NIXL, NCCL, cuBLAS workspaces) at start-up, e.g. with warm-up requests, ' +
      'so the memory is visible before serving and headroom planning counts it; do not alert on this step.',
  });
}
