/** parseVllmLog on startup logs of each format era (fixtures written from frameworks.md 5.4). */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { parseVllmLog } from '../../src/sources/vllm-log.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/vllm');
const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
const gib = (value: number) => Math.round(value * 2 ** 30);

describe('parseVllmLog', () => {
  it('V0 0.6: the one-line profiling results and "# GPU blocks"', () => {
    const log = parseVllmLog(read('log-v0.6.log'));
    expect(log.byPid.size).toBe(0);
    expect(log.untagged).toEqual({
      weightsBytes: gib(14.9888),
      kvCacheBytes: gib(54.31),
      numGpuBlocks: 27806,
      kvCacheTokens: null,
      // "Graph capturing finished in 12 secs." carried no memory figure in V0.
      cudaGraphBytes: null,
      nonTorchBytes: gib(0.36),
    });
  });

  it('~0.8: the multi-line summary, "# cuda blocks" and graph memory', () => {
    expect(parseVllmLog(read('log-v0.8-multiline.log')).untagged).toEqual({
      weightsBytes: gib(14.25),
      kvCacheBytes: gib(55.52),
      numGpuBlocks: 64976,
      kvCacheTokens: null,
      cudaGraphBytes: gib(0.61),
      nonTorchBytes: gib(0.12),
    });
  });

  it('V1, one engine process: figures under its pid, tokens with thousands separators', () => {
    const log = parseVllmLog(read('log-v1-single.log'));
    expect([...log.byPid.keys()]).toEqual([2051]);
    expect(log.byPid.get(2051)).toEqual({
      weightsBytes: gib(14.9926),
      kvCacheBytes: gib(54.02),
      numGpuBlocks: null,
      kvCacheTokens: 442544,
      cudaGraphBytes: gib(0.72),
      nonTorchBytes: null,
    });
  });

  it('V1 with four tensor-parallel workers: each worker its own figures', () => {
    const log = parseVllmLog(read('log-v1-tp4.log'));
    expect([...log.byPid.keys()].sort()).toEqual([3200, 3310, 3311, 3312, 3313]);
    // TP0 also logged the DEBUG profiling summary after loading: its later "weights memory" wins.
    expect(log.byPid.get(3310)).toMatchObject({ weightsBytes: gib(33.88), kvCacheBytes: gib(30.15), cudaGraphBytes: gib(1.05), nonTorchBytes: gib(0.28) });
    expect(log.byPid.get(3311)).toMatchObject({ weightsBytes: gib(33.882), nonTorchBytes: null });
    expect(log.byPid.get(3312)).toMatchObject({ kvCacheBytes: gib(30.16), cudaGraphBytes: gib(1.06) });
    expect(log.byPid.get(3200)).toMatchObject({ kvCacheTokens: 394912, weightsBytes: null });
  });

  it('early V1 (~0.7): "# GPU blocks" without CPU blocks', () => {
    expect(parseVllmLog(read('log-v1-early.log')).untagged).toMatchObject({ numGpuBlocks: 127104, weightsBytes: gib(0.2389) });
  });

  it('colour codes around the level are ignored', () => {
    expect(parseVllmLog(read('log-ansi.log')).untagged.kvCacheBytes).toBe(gib(20.5));
  });

  it('a log with none of the known lines matches nothing', () => {
    const log = parseVllmLog(read('log-unrelated.log'));
    expect(log.matchedLines).toBe(0);
    expect(parseVllmLog('').matchedLines).toBe(0);
  });

  it('the last figure wins after a restart; a negative non-torch figure is kept as logged', () => {
    const log = parseVllmLog('Available KV cache memory: 10.00 GiB\nnon_torch_memory takes -0.05GiB\nAvailable KV cache memory: 12.50 GiB\n');
    expect(log.untagged.kvCacheBytes).toBe(gib(12.5));
    expect(log.untagged.nonTorchBytes).toBe(gib(-0.05));
  });
});
