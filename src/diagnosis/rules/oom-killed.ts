/**
 * Killed by the OOM killer (the write-up's starting point: OOMKilled, exit 137): the process
 * vanished between two samples while its cgroup's OOM-kill count rose. The monitor that saw it go
 * read the count before and after (monitor/process-exits.ts); this rule names what grew in the
 * hour before, so the kill is not mistaken for its cause, and how full the container was.
 */
import { anonBytes, containerUsageBytes, driverBytes, mallocInUseBytes, outsideMallocBytes, reservedBytes, rssBytes } from '../fields.js';
import type { Evidence, Finding } from '../finding-schema.js';
import { seriesFrom } from '../growth.js';
import { evidenceOf, makeFinding } from '../make-finding.js';
import type { HistoryPoint, ProcessHistory } from '../process-history.js';
import type { SteadyWindow } from '../steady-window.js';
import { THRESHOLDS } from '../thresholds.js';
import { trend } from '../trend.js';
import { bytes, duration, percent } from '../wording.js';

type Reader = (point: HistoryPoint) => number | null | undefined;

/** What may have grown before the kill, host side first (the OOM killer judges host memory). */
const CANDIDATES: [string, string, Reader][] = [
  ['host.container.usageBytes', "the container's memory", containerUsageBytes],
  ['host.rssBytes', 'its resident set', rssBytes],
  ['host.malloc.inUseBytes', "malloc's memory in use", mallocInUseBytes],
  ['host.outsideMallocBytes', 'anonymous memory outside malloc', outsideMallocBytes],
  ['host.anonBytes', 'anonymous RSS', anonBytes],
  ['layers.driverBytes', 'its device memory', driverBytes],
  ['layers.allocator.reservedBytes', "PyTorch's reserved memory", reservedBytes],
];

export function oomKilled(history: ProcessHistory, steady: SteadyWindow): Finding | null {
  const end = history.exit;
  if (end === null || end.oomKillsBefore === null || end.oomKillsAfter === null || end.oomKillsAfter <= end.oomKillsBefore) return null;
  const last = history.points[history.points.length - 1]!;
  const from = Math.max(steady.from, last.t - THRESHOLDS.beforeKillMs);
  const grew: { evidence: Evidence; what: string; change: number }[] = [];
  for (const [series, what, read] of CANDIDATES) {
    const t = trend(seriesFrom(history, from, read));
    if (t.samples < THRESHOLDS.minSamples || t.change < THRESHOLDS.floorBytes) continue;
    grew.push({ evidence: evidenceOf(series, 'bytes', t, `${what}: ${bytes(t.first)} → ${bytes(t.last)} before the kill`), what, change: t.change });
  }
  // The working set: what the kernel cannot reclaim when the cgroup is at its limit.
  const host = last.process.host;
  const workingSet = host?.containerWorkingSetBytes ?? null;
  const held = workingSet ?? host?.containerUsageBytes ?? null;
  const limit = host?.containerLimitBytes ?? null;
  const fullness =
    held !== null && limit !== null && limit > 0 ? ` At its last sample the container's ${workingSet !== null ? 'working set' : 'usage'} was ${bytes(held)} of its ${bytes(limit)} limit (${percent(held / limit)}).` : '';
  const kills = end.oomKillsAfter - end.oomKillsBefore;
  const before =
    grew.length === 0
      ? ` Nothing it was seen to hold grew by ${bytes(THRESHOLDS.floorBytes)} or more in the ${duration(last.t - from)} before: the memory was taken elsewhere in its cgroup, or in a burst between samples.`
      : ` In the ${duration(last.t - from)} before, ${grew
          .slice(0, 3)
          .map((g) => `${g.what} grew ${bytes(g.change)}`)
          .join(', ')}.`;
  return makeFinding(history, {
    id: 'oom-killed',
    severity: 'critical',
    confidence: 0.9,
    title: 'Killed by the OOM killer',
    summary:
      `pid ${history.pid} was gone after its sample at ${new Date(last.t).toISOString().slice(11, 19)} UTC while the OOM-kill count of its cgroup (${end.oomKillsReadFrom ?? 'unknown'}) rose by ${kills}: ` +
      `the kernel's OOM killer ended it (exit 137).${fullness}${before}`,
    at: last.t,
    windowFrom: from,
    evidence: grew.map((g) => g.evidence),
    fix:
      'The kill is the end, not the cause: find what grew before it (the evidence here; `gpu-layers diagnose` names its pattern over a longer recording). ' +
      'Raise the container limit only once that growth is explained; a limit below the working set at peak load kills again.',
  });
}
