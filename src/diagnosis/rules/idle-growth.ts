/**
 * Memory growing while idle (the postmortems' second alert): the process's device memory rises
 * across readings where its vLLM server has no request running or waiting. Nothing should
 * allocate then; it is fragmentation being exposed or a leak in background work.
 */
import type { Finding } from '../finding-schema.js';
import { idleGrowth, mostlyIdle } from '../growth.js';
import { evidenceOf, lengthFactor, makeFinding } from '../make-finding.js';
import { seriesOf, type ProcessHistory } from '../process-history.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, duration, perHour } from '../wording.js';

const HOUR_MS = 3_600_000;

export function idleGrowthFinding(history: ProcessHistory): Finding | null {
  const driver = seriesOf(history, (p) => p.process.layers.driverBytes);
  if (driver.length < THRESHOLDS.minSamples) return null;
  const growth = idleGrowth(history, (p) => p.process.layers.driverBytes);
  if (growth.known < THRESHOLDS.minSamples || growth.idleIntervals < THRESHOLDS.minRises || !mostlyIdle(growth)) return null;
  const d = trend(driver, THRESHOLDS.noiseBytes);
  const idleRate = growth.idleMs > 0 ? (growth.idleRise / growth.idleMs) * HOUR_MS : 0;
  return makeFinding(history, {
    id: 'idle-growth',
    severity: 'warning',
    confidence: Math.min(1, 0.5 + 0.5 * (growth.idleRise / Math.max(1, growth.totalRise))) * lengthFactor(driver),
    title: 'Device memory growing while idle',
    summary:
      `Device memory rose ${bytes(growth.idleRise)} during ${duration(growth.idleMs)} with no request running or waiting (${perHour(idleRate)} while idle), ` +
      `${Math.round((growth.idleRise / Math.max(1, growth.totalRise)) * 100)}% of all its growth.`,
    at: growth.firstIdleRiseAt ?? d.firstRiseAt,
    evidence: [
      { ...evidenceOf('layers.driverBytes', 'bytes', d, `${bytes(growth.idleRise)} of ${bytes(growth.totalRise)} growth came in idle intervals (${growth.risingIdleIntervals} of ${growth.idleIntervals} idle intervals rose)`), slopePerHour: idleRate },
    ],
    fix:
      'Nothing should allocate with no request in flight. Take an allocator snapshot while idle (torch.cuda.memory._dump_snapshot(), then `gpu-layers snapshot`): ' +
      'many small free blocks between live ones is fragmentation (align KV block sizes, expandable_segments); growing live blocks is a leak in background work (profile it).',
  });
}
