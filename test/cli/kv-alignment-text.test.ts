/** The plain lines `probe` prints for a KV block alignment. */
import { describe, expect, it } from 'vitest';

import { kvAlignmentLines } from '../../src/cli/render/kv-alignment-text.js';
import { kvBlockAlignment } from '../../src/layers/kv-block-alignment.js';
import type { KvGeometry } from '../../src/sources/hf-config.js';

const KiB = 1024;

/** Llama-3.1-8B, block 16, TP1: 64 KiB a layer's page, 32 layers. */
const LLAMA_3_1_8B: KvGeometry = { numLayers: 32, numKvHeads: 8, headSize: 128, dtypeBytes: 2, blockSize: 16, kvFactor: 2, bytesPerBlock: 32 * 64 * KiB };
/** Llama-2-13B, block 16: 320 KiB a layer's page, 40 layers. */
const LLAMA_2_13B: KvGeometry = { numLayers: 40, numKvHeads: 40, headSize: 128, dtypeBytes: 2, blockSize: 16, kvFactor: 2, bytesPerBlock: 40 * 320 * KiB };
/** 5 KV heads x 72, fp8: 11,520 B a layer's page, 10 layers. */
const ODD: KvGeometry = { numLayers: 10, numKvHeads: 5, headSize: 72, dtypeBytes: 1, blockSize: 16, kvFactor: 2, bytesPerBlock: 10 * 11_520 };

describe('kvAlignmentLines', () => {
  it('aligned pages, a pool with a small rounding loss: not worth fixing, with the threshold', () => {
    expect(kvAlignmentLines(kvBlockAlignment({ geometry: LLAMA_3_1_8B, numGpuBlocks: 27_000 }))).toEqual([
      'KV block alignment: 16-token blocks of 64.0 KiB per layer, 2.0 MiB over 32 layers',
      "  allocator, one layer's page: 512 B rounding, 32 to a 2.0 MiB segment",
      '  pages allocated one by one (not how vLLM allocates): aligned, nothing lost',
      '  pool (vLLM V1, one tensor per layer): 32 x 27000 blocks (1.6 GiB each), 16.0 MiB lost to rounding (0.030% of 52.7 GiB)',
      '  not worth fixing: under 1.0% of the pool and under 256.0 MiB',
    ]);
  });

  it('a pool that loses nothing says so, and says nothing of worth', () => {
    const lines = kvAlignmentLines(kvBlockAlignment({ geometry: LLAMA_3_1_8B, numGpuBlocks: 27_008 }));
    expect(lines.at(-1)).toBe('  pool (vLLM V1, one tensor per layer): 32 x 27008 blocks (1.6 GiB each), aligned, nothing lost');
    expect(lines).toHaveLength(4);
  });

  it('misaligned pages with a block size that aligns them, and a pool worth fixing: the advice', () => {
    const alignment = kvBlockAlignment({ geometry: LLAMA_2_13B, numGpuBlocks: 150 });
    const lines = kvAlignmentLines(alignment);
    expect(lines[2]).toBe('  pages allocated one by one (not how vLLM allocates): 21.3 KiB lost per page (6.7%), 853.3 KiB per block; --block-size 64 aligns');
    expect(lines[3]).toBe('  pool (vLLM V1, one tensor per layer): 40 x 150 blocks (46.9 MiB each), 45.0 MiB lost to rounding (2.4% of 1.8 GiB)');
    expect(lines[4]).toBe(`  worth fixing: ${alignment.advice}`);
    expect(lines[4]).toContain('--num-gpu-blocks-override 153');
  });

  it('no power of two aligns, no num_gpu_blocks: said so, and the pool is n/a', () => {
    expect(kvAlignmentLines(kvBlockAlignment({ geometry: ODD, numGpuBlocks: null }))).toEqual([
      'KV block alignment: 16-token blocks of 11.3 KiB per layer, 112.5 KiB over 10 layers',
      "  allocator, one layer's page: 512 B rounding, 178 to a 2.0 MiB segment",
      '  pages allocated one by one (not how vLLM allocates): 262 B lost per page (2.3%), 2.6 KiB per block; no block size from 8 to 256 aligns',
      '  pool (vLLM V1, one tensor per layer): n/a (num_gpu_blocks unknown)',
    ]);
  });
});
