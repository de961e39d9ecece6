/**
 * What the real-GPU check brought back from an H200 (docs/validation/h200-2026-11-26.md), used as
 * fixtures: the memory snapshots torch dumped after the graph and churn phases, read by
 * gpu-layers' pickle reader and checked against torch's own figures at that moment and against
 * CPython's reading of the same file; the companion file, through its schema and the allocator
 * layer; and the device's NVML readings as a mock scenario the probe reads back unchanged.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { computeGaps } from '../../src/layers/gaps.js';
import { openProbe } from '../../src/probe/probe.js';
import { analyzeSnapshot } from '../../src/snapshot/analyze-snapshot.js';
import { allocatorLayerOf } from '../../src/layers/allocator-layer.js';
import { companionFileSchema } from '../../src/sources/companion.js';
import { nodeGypBuild, python, repoRoot } from '../helpers/paths.js';

const real = (name: string) => path.join(repoRoot, 'test/fixtures/real', name);
const run = JSON.parse(readFileSync(real('h200-run.json'), 'utf8'));
const torchAt = (phase: string) => run.phases.find((p: { phase: string }) => p.phase === phase).torch;
let work: string;

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-real-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('the H200 run', () => {
  it.each(['graphs', 'churn'])('the %s snapshot: reserved and allocated are torch\'s own, and CPython reads the same figures', async (phase) => {
    const pickle = gunzipSync(readFileSync(real(`h200-snapshot-${phase}.pickle.gz`)));
    const report = await analyzeSnapshot(pickle);
    expect(report.protocol).toBe(4);
    const [device] = report.devices;
    expect(device!.reservedBytes).toBe(torchAt(phase).memory_reserved);
    expect(device!.allocatedBytes).toBe(torchAt(phase).memory_allocated);
    // vLLM-style capture into graph_pool_handle(): a (0, N) pool.
    expect(device!.privatePools.map((p) => [p.poolId, p.kind])).toEqual([[[0, 1], 'mempool']]);
    const file = path.join(work, `${phase}.pickle`);
    writeFileSync(file, pickle);
    const cpython = spawnSync(python, [path.join(repoRoot, 'scripts/oracles/snapshot_figures.py'), file], { encoding: 'utf8' });
    expect(cpython.status, cpython.stderr).toBe(0);
    expect(report.devices).toEqual(JSON.parse(cpython.stdout).devices);
  });

  it('the cached bytes outside the pools, from the companion\'s figures, are the snapshot\'s free blocks outside them', async () => {
    const [device] = (await analyzeSnapshot(gunzipSync(readFileSync(real('h200-snapshot-graphs.pickle.gz'))))).devices;
    const [pool] = device!.privatePools;
    const torch = torchAt('graphs');
    const allocator = {
      reservedBytes: torch.memory_reserved, allocatedBytes: torch.memory_allocated, activeBytes: null, inactiveSplitBytes: null, requestedBytes: null,
      numAllocRetries: null, numOoms: null, privatePoolBytes: pool!.reservedBytes, largestFreeBlockBytes: null, privatePoolAllocatedBytes: pool!.allocatedBytes, lastOom: null,
      source: { file: 'f', writtenAt: 'w', ageSeconds: 0, torchVersion: null },
    };
    const gaps = computeGaps({ driverBytes: null, contextBytes: null, allocator, framework: null }, {});
    const pendingFree = device!.activeBytes - device!.allocatedBytes;
    expect(gaps.allocatorCachedBytes).toBe(device!.freeBytes + pendingFree - pool!.freeBytes);
    expect(gaps.allocatorCachedBytes).toBeGreaterThan(0);
  });

  it('the companion file (churn phase) gives torch\'s figures, and the private pool the snapshot shows', async () => {
    const document = companionFileSchema.parse(JSON.parse(readFileSync(real('h200-companion.json'), 'utf8')));
    expect(document.torchVersion).toBe('2.11.0+cu130');
    const layer = allocatorLayerOf({ ok: true, file: 'h200-companion.json', ageSeconds: 0, document }, `GPU-${document.devices[0]!.uuid}`);
    if ('code' in layer) throw new Error(layer.message);
    expect(layer.reservedBytes).toBe(torchAt('churn').memory_reserved);
    expect(layer.allocatedBytes).toBe(torchAt('churn').memory_allocated);
    const churn = await analyzeSnapshot(gunzipSync(readFileSync(real('h200-snapshot-churn.pickle.gz'))));
    expect(layer.privatePoolBytes).toBe(churn.devices[0]!.privatePools[0]!.reservedBytes);
  });

  it('the mock scenario reproduces the device: the probe reads back what it read on the H200', async () => {
    const recorded = JSON.parse(readFileSync(real('h200-probe.json'), 'utf8'));
    const previous = process.env.GPU_LAYERS_MOCK_SCENARIO;
    process.env.GPU_LAYERS_MOCK_SCENARIO = real('h200.scenario');
    const probe = await openProbe({ nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false });
    try {
      const sample = await probe.sample();
      expect(sample.driver).toEqual(recorded.driver);
      expect(sample.library.processRowBytes).toEqual(recorded.library.processRowBytes);
      const [device] = sample.devices;
      const [was] = recorded.devices;
      for (const key of ['name', 'uuid', 'pci', 'memory', 'bar1', 'utilization'] as const) expect(device![key]).toEqual(was[key]);
      expect(device!.processes!.map((p) => [p.pid, p.usedBytes])).toEqual(was.processes.map((p: { pid: number; usedBytes: number }) => [p.pid, p.usedBytes]));
    } finally {
      await probe.close();
      if (previous === undefined) delete process.env.GPU_LAYERS_MOCK_SCENARIO;
      else process.env.GPU_LAYERS_MOCK_SCENARIO = previous;
    }
  });
});
