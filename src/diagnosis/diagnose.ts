/**
 * diagnose(samples): the failure patterns of the postmortems (DESIGN.md "Diagnosis") found in a
 * recording or a live window, most severe first. Pure: the same samples give the same findings,
 * live or recorded.
 */
import { SEVERITIES, type Finding } from './finding-schema.js';
import { processHistories, type ProcessHistory } from './process-history.js';
import { allocatorFragmentation } from './rules/allocator-fragmentation.js';
import { cudaGraphCreep } from './rules/cuda-graph-creep.js';
import { hostHeapLeak } from './rules/host-heap-leak.js';
import { idleGrowthFinding } from './rules/idle-growth.js';
import { lazyInit } from './rules/lazy-init.js';
import { rssNotMalloc } from './rules/rss-not-malloc.js';
import type { LayeredSample } from '../layers/schema.js';

const RULES: ((history: ProcessHistory) => Finding | null)[] = [
  cudaGraphCreep,
  allocatorFragmentation,
  hostHeapLeak,
  rssNotMalloc,
  lazyInit,
  idleGrowthFinding,
];

export function diagnose(samples: readonly LayeredSample[]): Finding[] {
  const findings: Finding[] = [];
  for (const history of processHistories(samples)) {
    for (const rule of RULES) {
      const finding = rule(history);
      if (finding !== null) findings.push(finding);
    }
  }
  return findings.sort(
    (a, b) => SEVERITIES.indexOf(b.severity) - SEVERITIES.indexOf(a.severity) || a.at.localeCompare(b.at) || a.id.localeCompare(b.id),
  );
}
