/**
 * scripts/gpu-check.sh --simulate: the real-GPU check's whole plumbing on this machine, against
 * the mock NVML (the workload runs its phases without torch, pynvml reads the mock). Keeps the
 * script working between the rare sessions that have a GPU.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';

it('runs every phase, check and timing against the mock and writes its results', { timeout: 120_000 }, () => {
  const out = mkdtempSync(path.join(tmpdir(), 'gpu-check-'));
  try {
    const run = spawnSync('bash', [path.join(repoRoot, 'scripts/gpu-check.sh'), out, '--simulate'], { encoding: 'utf8', timeout: 110_000 });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(results.errors).toEqual([]);
    expect(results.phases.map((p: { phase: string }) => p.phase)).toEqual(['init', 'weights', 'kv', 'graphs', 'churn', 'graphs2']);
    // The mock lists the workload with 1 GiB more at each phase; pynvml and the probe agree.
    expect(results.phases.map((p: any) => p.probe.layers.driverBytes)).toEqual([1, 2, 3, 4, 5, 6].map((n) => n * 2 ** 30));
    expect(results.checks.length).toBeGreaterThanOrEqual(8);
    expect(results.checks.filter((c: { ok: boolean }) => !c.ok)).toEqual([]);
    expect(results.timings.probeJsonProcess.runsMs).toHaveLength(10);
    expect(existsSync(path.join(out, 'probe-final.json'))).toBe(true);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
