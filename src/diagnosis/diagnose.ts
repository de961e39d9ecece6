/**
 * diagnose(samples): the failure patterns of the postmortems (docs/diagnosis.md) found in a
 * recording or a live window, most severe first. Pure: the same samples give the same findings,
 * live or recorded.
 */
import type { LayeredSample } from '../layers/schema.js';
import { SEVERITIES, type Finding } from './finding-schema.js';
import { processHistories, type ProcessHistory } from './process-history.js';
import { allocatorFragmentation } from './rules/allocator-fragmentation.js';
import { cudaGraphCreep } from './rules/cuda-graph-creep.js';
import { deviceMemoryGrowth } from './rules/device-memory-growth.js';
import { gpuTensorLeak } from './rules/gpu-tensor-leak.js';
import { hostHeapLeak } from './rules/host-heap-leak.js';
import { idleGrowthFinding } from './rules/idle-growth.js';
import { lazyInit } from './rules/lazy-init.js';
import { oomKilled } from './rules/oom-killed.js';
import { rssNotMalloc } from './rules/rss-not-malloc.js';
import { steadyWindow, type SteadyWindow } from './steady-window.js';
import { THRESHOLDS } from './thresholds.js';

const RULES: ((history: ProcessHistory, steady: SteadyWindow) => Finding | null)[] = [
  cudaGraphCreep,
  allocatorFragmentation,
  gpuTensorLeak,
  deviceMemoryGrowth,
  hostHeapLeak,
  rssNotMalloc,
  lazyInit,
  idleGrowthFinding,
  oomKilled,
];

export function diagnose(samples: readonly LayeredSample[]): Finding[] {
  return diagnoseHistories(processHistories(samples));
}

/** The same over histories built another way (a recording streamed into a HistoryBuilder). */
export function diagnoseHistories(histories: readonly ProcessHistory[]): Finding[] {
  const findings: Finding[] = [];
  for (const history of histories) {
    if (history.points.length < THRESHOLDS.minSamples) continue;
    // Each rule judges the process's steady life: its start-up, when the window holds it, is left out.
    const steady = steadyWindow(history);
    for (const rule of RULES) {
      const finding = rule(history, steady);
      if (finding !== null) findings.push(finding);
    }
  }
  return findings.sort(
    (a, b) => SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || a.at.localeCompare(b.at) || a.id.localeCompare(b.id),
  );
}
