/** The lines `gpu-layers probe` prints under a process: the stacked bar, the gaps in words, vLLM, host. */
import { describe, expect, it } from 'vitest';

import { layerLines } from '../../src/cli/render/layer-lines.js';
import { makeStyle } from '../../src/cli/render/style.js';
import { joinLayers } from '../../src/layers/join.js';
import type { FrameworkResult } from '../../src/layers/vllm-attribution.js';
import { inputs, processOf, sample, vllmLayer } from '../helpers/layered-fixtures.js';

const plain = makeStyle(false);
const GiB = 2 ** 30;

describe('layerLines', () => {
  it('every layer known: bar, the outside-allocator sentence with the context, pools, cache, vLLM, host', () => {
    const lines = layerLines(processOf(joinLayers(sample(), inputs()), 10), '  ', plain);
    // 30 cells for the driver's 200 B, cut at the running sums: tensors 90 -> 13.5, rounded to 14;
    // + pools 10 -> 15; + cached 20 -> 18; + outside 80 -> 30.
    const cells = '█'.repeat(14) + '▓'.repeat(1) + '▒'.repeat(3) + '░'.repeat(12);
    expect(lines[0]).toBe(`  [${cells}] █ tensors 90 B  ▓ graph pools 10 B  ▒ cached 20 B  ░ outside allocator 80 B`);
    expect(lines).toContain('  80 B outside the PyTorch allocator, of which ~20 B is the CUDA context; the rest (60 B) is likely CUDA graphs and NCCL.');
    expect(lines).toContain('  10 B of the allocator is held by CUDA graph (private) pools.');
    expect(lines).toContain('  20 B cached free in the allocator; 5.0% of reserved is free but trapped in split blocks.');
    expect(lines).toContain('  vLLM: weights 100 B, KV cache 50 B (25% in use), graph capture took 8 B, 1 running / 0 waiting');
    expect(lines.at(-1)).toBe('  host RSS 3.9 KiB (anon 2.9 KiB, file 900 B, shmem 100 B, driver-mapped 64 B)');
  });

  it('a process tied to vLLM only by its command line says so', () => {
    const framework = new Map<number, FrameworkResult>([[10, { layer: { ...vllmLayer, matchedBy: 'command-line', weightsBytes: 34 * GiB }, errors: {} }]]);
    const lines = layerLines(processOf(joinLayers(sample(), inputs({ framework })), 10), '', plain);
    expect(lines).toContain('vLLM (matched by command line): weights 34.0 GiB, KV cache 50 B (25% in use), graph capture took 8 B, 1 running / 0 waiting');
  });

  it('no companion: the allocator line gives the reason instead of a bar, and no gap is guessed', () => {
    const lines = layerLines(processOf(joinLayers(sample(), inputs()), 20), '', plain);
    expect(lines[0]).toMatch(/^allocator: n\/a \(no \/stats\/20\.json: the gpu-layers companion is not running in this process/);
    expect(lines.join('\n')).not.toMatch(/outside the PyTorch allocator|CUDA graph|cached free/);
  });

  it("the load, malloc, the container and a KV alignment worth fixing, each in the line it belongs to", () => {
    const load = {
      source: 'metrics' as const,
      promptTokensPerSecond: 1234.4,
      generationTokensPerSecond: 56.25,
      requestsFinishedPerSecond: 0.5,
      phase: 'prefill-heavy' as const,
      sinceLastPrefillSeconds: 150,
      lastPrefillBurstTokens: 900,
      idleBeforeLastBurstSeconds: null,
    };
    const kvBlockAlignment = { blockBytesPerLayer: 32768, poolLostBytes: 24 * 2 ** 20, poolLostShare: 0.024, alignedBlockSize: null, worthFixing: true, advice: 'the pool loses 24.0 MiB' };
    const framework = new Map<number, FrameworkResult>([[10, { layer: { ...vllmLayer, load, kvBlockAlignment }, errors: {} }]]);
    const base = inputs({ framework });
    const host = { ...base.host!.get(10)!, container: { cgroupVersion: 2 as const, path: '/c', usageBytes: 8 * GiB, workingSetBytes: 6 * GiB, limitBytes: null, oomEvents: 0, oomKills: 2, errors: {} } };
    const file = base.companion!.get(10)!;
    if (!file.ok) throw new Error('fixture');
    const malloc = { source: 'mallinfo2' as const, arenaBytes: 1000, mmappedBytes: 500, mmappedChunks: 1, inUseBytes: 1300, freeBytes: 200, releasableBytes: 0, arenaCount: 1 };
    const companion = new Map(base.companion!).set(10, { ...file, document: { ...file.document, host: { malloc, mallocUnknownBecause: null, python: null } } });
    const lines = layerLines(processOf(joinLayers(sample(), { ...base, companion, host: new Map([[10, host]]) }), 10), '', plain);
    expect(lines).toContain('vLLM: weights 100 B, KV cache 50 B (25% in use), graph capture took 8 B, 1 running / 0 waiting, prefill-heavy, 1,234 prompt / 56.3 generated tok/s, last prefill 3 min ago');
    expect(lines).toContain('KV block alignment: the pool loses 24.0 MiB');
    // anon 3000 - (arenas 1000 + mmapped 500) = 1500 B outside malloc.
    expect(lines.at(-1)).toBe(
      'host RSS 3.9 KiB (anon 2.9 KiB, file 900 B, shmem 100 B, driver-mapped 64 B); malloc 1.3 KiB in use, 200 B free in its arenas; 1.5 KiB anonymous outside malloc; cgroup 8.0 GiB, working set 6.0 GiB (no limit), 2 OOM kill(s)',
    );
  });
});
