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
});
