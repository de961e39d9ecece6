/**
 * KV block alignment on real geometries. Every expected figure is worked out here by hand from the
 * caching allocator's rules (c10/cuda/CUDACachingAllocator.cpp: round to 512 B; at most 1 MiB from
 * 2 MiB segments; below 10 MiB from 20 MiB segments; else a segment of its own rounded to 2 MiB),
 * not taken from the function.
 */
import { describe, expect, it } from 'vitest';

import { allocatorRequest, kvBlockAlignment } from '../../src/layers/kv-block-alignment.js';
import { kvGeometry, type KvGeometry } from '../../src/sources/hf-config.js';

const KiB = 1024;
const MiB = 1024 * KiB;

function geometryOf(config: object, blockSize: number, cacheDtype = 'auto', tensorParallel = 1): KvGeometry {
  const result = kvGeometry(config, { blockSize, tensorParallel, cacheDtype });
  if (!result.ok) throw new Error(result.message);
  return result.geometry;
}

const LLAMA_3_1_8B = { num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, hidden_size: 4096, head_dim: 128, torch_dtype: 'bfloat16' };
const DEEPSEEK_V2_LITE = {
  num_hidden_layers: 27,
  num_attention_heads: 16,
  num_key_value_heads: 16,
  hidden_size: 2048,
  kv_lora_rank: 512,
  qk_rope_head_dim: 64,
  qk_nope_head_dim: 128,
  v_head_dim: 128,
  torch_dtype: 'bfloat16',
};
/** No GQA: 40 KV heads of 128 (hidden_size / heads), fp16, 40 layers. */
const LLAMA_2_13B = { num_hidden_layers: 40, num_attention_heads: 40, hidden_size: 5120, torch_dtype: 'float16' };
/** Contrived: 5 KV heads of 72, an fp8 cache, 10 layers. */
const ODD = { num_hidden_layers: 10, num_attention_heads: 10, num_key_value_heads: 5, head_dim: 72, torch_dtype: 'bfloat16' };

describe('allocatorRequest: the size classes at their edges', () => {
  it('rounds to 512 B, 2 MiB segments up to 1 MiB, 20 MiB below 10 MiB, then 2 MiB rounding', () => {
    expect(allocatorRequest(100)).toMatchObject({ sizeClass: 'small', roundedBytes: 512, segmentBytes: 2 * MiB, requestsPerSegment: 4096 });
    expect(allocatorRequest(1 * MiB)).toMatchObject({ sizeClass: 'small', roundedBytes: 1 * MiB, segmentBytes: 2 * MiB, requestsPerSegment: 2 });
    // 1 MiB + 1 B rounds to 1 MiB + 512 B: over kSmallSize, so a 20 MiB segment holds 19.
    expect(allocatorRequest(1 * MiB + 1)).toMatchObject({ sizeClass: 'large-shared', granularityBytes: 512, roundedBytes: MiB + 512, segmentBytes: 20 * MiB, requestsPerSegment: 19 });
    // The class is decided on the rounded size: 10 MiB - 100 B rounds to 10 MiB, not below kMinLargeAlloc.
    expect(allocatorRequest(10 * MiB - 100)).toMatchObject({ sizeClass: 'large-own', granularityBytes: 2 * MiB, roundedBytes: 10 * MiB, segmentBytes: 10 * MiB, requestsPerSegment: 1 });
    expect(allocatorRequest(10 * MiB - 1024)).toMatchObject({ sizeClass: 'large-shared', segmentBytes: 20 * MiB, requestsPerSegment: 2 });
    expect(allocatorRequest(10 * MiB + 1)).toMatchObject({ sizeClass: 'large-own', roundedBytes: 10 * MiB + 512, segmentBytes: 12 * MiB });
  });
});

describe('kvBlockAlignment', () => {
  it('Llama-3.1-8B, block 16, TP1: 64 KiB pages fill 2 MiB segments exactly; the pool loses 0.5 MiB a layer, not worth fixing', () => {
    const geometry = geometryOf(LLAMA_3_1_8B, 16);
    const page = 2 * 16 * 8 * 128 * 2; // K and V x tokens x KV heads x head_dim x bf16 = 65,536
    expect(page).toBe(64 * KiB);
    const numGpuBlocks = 27_000;
    const tensor = numGpuBlocks * page; // 1,769,472,000 B = 1687.5 MiB, its own segment rounded to 1688 MiB
    expect(tensor).toBe(1687.5 * MiB);
    const a = kvBlockAlignment({ geometry, numGpuBlocks });
    expect(a).toMatchObject({ blockSize: 16, numLayers: 32, blockBytesPerLayer: page, blockBytesAllLayers: 32 * page, alignedBlockSize: null, worthFixing: false, advice: null });
    expect(a.blockBytesAllLayers).toBe(2 * MiB);
    expect(a.blockRequest).toMatchObject({ sizeClass: 'small', granularityBytes: 512, roundedBytes: page, segmentBytes: 2 * MiB, requestsPerSegment: 32 });
    expect(a.perBlock).toEqual({ roundingLossBytesPerLayer: 0, segmentTailBytes: 0, lostBytesPerLayer: 0, lostBytesAllLayers: 0, lostFraction: 0, aligned: true });
    expect(a.pool).toEqual({
      numGpuBlocks,
      tensorCount: 32,
      tensorBytes: tensor,
      tensorRequest: expect.objectContaining({ sizeClass: 'large-own', segmentBytes: 1688 * MiB }),
      requestedBytes: 32 * tensor,
      reservedBytes: 32 * 1688 * MiB,
      lostBytes: 32 * 0.5 * MiB, // 16 MiB
      lostFraction: (32 * 0.5 * MiB) / (32 * tensor), // 0.03%
      sameMemoryNumGpuBlocks: (1688 * MiB) / page, // 27,008: 8 more blocks in the same segments
    });
    expect(a.pool!.sameMemoryNumGpuBlocks).toBe(27_008);
  });

  it('Llama-3.1-8B with a whole number of 2 MiB per layer tensor loses nothing at all', () => {
    const a = kvBlockAlignment({ geometry: geometryOf(LLAMA_3_1_8B, 16), numGpuBlocks: 27_008 });
    expect(a.pool).toMatchObject({ lostBytes: 0, lostFraction: 0, sameMemoryNumGpuBlocks: null });
    expect(a.worthFixing).toBe(false);
  });

  it('Llama-3.1-8B on a tight GPU (1,000 blocks): 1.5 MiB of every 64 MiB tensor lost, 2.4% of the pool, worth fixing', () => {
    const page = 64 * KiB;
    const tensor = 1000 * page; // 62.5 MiB -> 64 MiB
    const lost = 32 * (64 * MiB - tensor); // 48 MiB
    const a = kvBlockAlignment({ geometry: geometryOf(LLAMA_3_1_8B, 16), numGpuBlocks: 1000 });
    expect(a.pool).toMatchObject({ tensorBytes: tensor, reservedBytes: 32 * 64 * MiB, lostBytes: lost, lostFraction: lost / (32 * tensor), sameMemoryNumGpuBlocks: 1024 });
    expect(lost / (32 * tensor)).toBeCloseTo(0.024, 10);
    expect(a.worthFixing).toBe(true);
    expect(a.advice).toBe(
      "The KV pool loses 48.0 MiB (2.4% of 2.0 GiB) to the allocator's rounding: each of its 32 per-layer tensors of 62.5 MiB takes 64.0 MiB, " +
        'and --num-gpu-blocks-override 1024 fills them (24 more blocks, no more memory); blocks allocated one by one would lose nothing.',
    );
  });

  it('DeepSeek-V2-Lite (MLA 512 + 64, bf16, block 64): 72 KiB pages leave 32 KiB of each 2 MiB segment, and no power of two aligns them', () => {
    const geometry = geometryOf(DEEPSEEK_V2_LITE, 64);
    const page = 64 * (512 + 64) * 2; // one latent, no K/V factor: 73,728 B = 72 KiB = 144 x 512 B
    expect(page).toBe(72 * KiB);
    const perSegment = Math.floor((2 * MiB) / page); // 28
    expect(perSegment).toBe(28);
    const tail = 2 * MiB - 28 * page; // 32 KiB
    const lostPerPage = (2 * MiB) / 28 - page; // 1170.29 B
    const numGpuBlocks = 10_000;
    const tensor = numGpuBlocks * page; // 703.125 MiB -> 704 MiB
    const a = kvBlockAlignment({ geometry, numGpuBlocks });
    expect(a).toMatchObject({ numLayers: 27, blockBytesPerLayer: page, blockBytesAllLayers: 27 * page, alignedBlockSize: null, worthFixing: false, advice: null });
    expect(a.blockRequest).toMatchObject({ sizeClass: 'small', roundedBytes: page, requestsPerSegment: 28 });
    expect(a.perBlock).toEqual({
      roundingLossBytesPerLayer: 0,
      segmentTailBytes: tail,
      lostBytesPerLayer: lostPerPage,
      lostBytesAllLayers: 27 * lostPerPage,
      lostFraction: lostPerPage / page,
      aligned: false,
    });
    expect(tail).toBe(32 * KiB);
    expect(lostPerPage).toBeCloseTo(1170.2857, 4);
    expect(a.pool).toMatchObject({ tensorBytes: tensor, reservedBytes: 27 * 704 * MiB, lostBytes: 27 * (704 * MiB - tensor) });
    expect(a.pool!.lostBytes).toBe(27 * 0.875 * MiB); // 23.6 MiB, 0.12% of the pool
  });

  it('a contrived odd geometry (5 KV heads x 72, fp8): 11,520 B pages, misaligned by rounding and tail, still not worth fixing in V1', () => {
    const geometry = geometryOf(ODD, 16, 'fp8');
    const page = 2 * 16 * 5 * 72 * 1; // 11,520 B = 22.5 x 512 B
    const rounded = 23 * 512; // 11,776
    const perSegment = Math.floor((2 * MiB) / rounded); // 178
    expect(perSegment).toBe(178);
    const lostPerPage = (2 * MiB) / 178 - page; // 256 B rounding + 1,024 B tail / 178 = 261.75 B
    const numGpuBlocks = 2000;
    const tensor = numGpuBlocks * page; // 23,040,000 B (21.97 MiB) -> 22 MiB
    const a = kvBlockAlignment({ geometry, numGpuBlocks });
    expect(a.blockRequest).toMatchObject({ sizeClass: 'small', roundedBytes: rounded, requestsPerSegment: 178 });
    expect(a.perBlock).toEqual({
      roundingLossBytesPerLayer: rounded - page,
      segmentTailBytes: 2 * MiB - 178 * rounded,
      lostBytesPerLayer: lostPerPage,
      lostBytesAllLayers: 10 * lostPerPage,
      lostFraction: lostPerPage / page,
      aligned: false,
    });
    expect(rounded - page).toBe(256);
    expect(2 * MiB - 178 * rounded).toBe(1024);
    expect(lostPerPage).toBeCloseTo(256 + 1024 / 178, 9);
    // 720 B a token = 45 x 16: an odd factor of 45 never divides 2 MiB, 20 MiB or a multiple of 2 MiB
    // for any block size from 8 to 256.
    expect(a.alignedBlockSize).toBeNull();
    expect(a.pool).toMatchObject({ tensorBytes: tensor, reservedBytes: 10 * 22 * MiB, lostBytes: 10 * (22 * MiB - tensor) });
    expect(22 * MiB - tensor).toBe(28_672);
    expect(a.worthFixing).toBe(false);
  });

  it('Llama-2-13B (40 KV heads, fp16, block 16): 320 KiB pages waste 128 KiB a segment; block 64 makes 1.25 MiB pages, 16 to a 20 MiB segment', () => {
    const geometry = geometryOf(LLAMA_2_13B, 16);
    const page = 2 * 16 * 40 * 128 * 2; // 327,680 B = 320 KiB: 6 to a 2 MiB segment, 128 KiB left
    const lostPerPage = (2 * MiB) / 6 - page; // 21,845.33 B
    // Block 8: 160 KiB, 12 to a segment, 128 KiB left. Block 32: 640 KiB, 3, 128 KiB left.
    // Block 64: 1.25 MiB, over 1 MiB: 16 to a 20 MiB segment, none left. 128 (2.5 MiB, 8) and 256 (5 MiB, 4) align too; 64 is nearest.
    expect((20 * MiB) % (4 * page)).toBe(0);
    const numGpuBlocks = 150;
    const tensor = numGpuBlocks * page; // 46.875 MiB -> 48 MiB
    const lost = 40 * (48 * MiB - tensor); // 45 MiB, 2.4% of the pool
    const a = kvBlockAlignment({ geometry, numGpuBlocks });
    expect(a.perBlock).toMatchObject({ segmentTailBytes: 128 * KiB, lostBytesPerLayer: lostPerPage, lostBytesAllLayers: 40 * lostPerPage, aligned: false });
    expect(a.alignedBlockSize).toBe(64);
    expect(a.pool).toMatchObject({ lostBytes: lost, sameMemoryNumGpuBlocks: Math.floor((48 * MiB) / page) });
    expect(Math.floor((48 * MiB) / page)).toBe(153);
    expect(a.worthFixing).toBe(true);
    expect(a.advice).toBe(
      "The KV pool loses 45.0 MiB (2.4% of 1.8 GiB) to the allocator's rounding: each of its 40 per-layer tensors of 46.9 MiB takes 48.0 MiB, " +
        'and --num-gpu-blocks-override 153 fills them (3 more blocks, no more memory); blocks allocated one by one would lose 853.3 KiB each (6.7%), which --block-size 64 would align.',
    );
  });

  it('a page under 512 B is rounded up to 512 B; the nearest aligned block size is suggested', () => {
    // 1 KV head x head_dim 16 x fp8 x K and V = 32 B a token; block 8 = 256 B, rounded up to 512 B.
    const geometry: KvGeometry = { numLayers: 4, numKvHeads: 1, headSize: 16, dtypeBytes: 1, blockSize: 8, kvFactor: 2, bytesPerBlock: 4 * 256 };
    const a = kvBlockAlignment({ geometry, numGpuBlocks: null });
    expect(a.perBlock).toMatchObject({ roundingLossBytesPerLayer: 256, lostBytesPerLayer: (2 * MiB) / 4096 - 256, lostFraction: 1, aligned: false });
    expect(a.alignedBlockSize).toBe(16); // 512 B, 4,096 to a 2 MiB segment
    expect(a).toMatchObject({ pool: null, worthFixing: false, advice: null });
    // From 32 B x 32 = 1 KiB (aligned) nothing is suggested.
    expect(kvBlockAlignment({ geometry: { ...geometry, blockSize: 32, bytesPerBlock: 4 * 1024 }, numGpuBlocks: null }).alignedBlockSize).toBeNull();
  });

  it('a tie between aligned block sizes goes to the smaller', () => {
    // 256 KiB a token (2 x 512 heads x 128 x 2 B): block 16 = 4 MiB (5 to a 20 MiB segment), block 32 = 8 MiB
    // (2 to a 20 MiB segment, 4 MiB left), block 64 = 16 MiB (a segment of its own, a multiple of 2 MiB).
    const geometry: KvGeometry = { numLayers: 2, numKvHeads: 512, headSize: 128, dtypeBytes: 2, blockSize: 32, kvFactor: 2, bytesPerBlock: 2 * 8 * MiB };
    const a = kvBlockAlignment({ geometry, numGpuBlocks: null });
    expect(a.blockRequest).toMatchObject({ sizeClass: 'large-shared', segmentBytes: 20 * MiB, requestsPerSegment: 2 });
    expect(a.perBlock).toMatchObject({ segmentTailBytes: 4 * MiB, lostBytesPerLayer: 2 * MiB, aligned: false });
    expect(allocatorRequest(16 * MiB)).toMatchObject({ sizeClass: 'large-own', segmentBytes: 16 * MiB });
    expect(a.alignedBlockSize).toBe(16);
  });

  it('the 256 MiB arm: 200 layers each losing 1.5 MiB of a 1000.5 MiB tensor is 300 MiB, 0.15% of the pool, worth fixing', () => {
    const geometry: KvGeometry = { numLayers: 200, numKvHeads: 8, headSize: 128, dtypeBytes: 2, blockSize: 16, kvFactor: 2, bytesPerBlock: 200 * 64 * KiB };
    const tensor = 16_008 * 64 * KiB; // 1000.5 MiB -> 1002 MiB
    expect(tensor).toBe(1000.5 * MiB);
    const a = kvBlockAlignment({ geometry, numGpuBlocks: 16_008 });
    expect(a.pool).toMatchObject({ lostBytes: 200 * 1.5 * MiB, sameMemoryNumGpuBlocks: 16_032 });
    expect(a.pool!.lostFraction).toBeLessThan(0.01);
    expect(a.worthFixing).toBe(true);
    // One block fewer: 1000.4375 MiB -> 1002 MiB, 1.5625 MiB a layer; 10 layers lose 15.6 MiB (0.16%): neither arm.
    expect(kvBlockAlignment({ geometry: { ...geometry, numLayers: 10, bytesPerBlock: 10 * 64 * KiB }, numGpuBlocks: 16_007 }).worthFixing).toBe(false);
  });

  it('without num_gpu_blocks there is no pool, and nothing is worth fixing', () => {
    const a = kvBlockAlignment({ geometry: geometryOf(ODD, 16, 'fp8'), numGpuBlocks: null });
    expect(a).toMatchObject({ pool: null, worthFixing: false, advice: null });
    expect(a.perBlock.aligned).toBe(false);
  });

  it('tensor parallelism divides the KV heads, and so the page: Llama-3.1-8B at TP 8 has 8 KiB pages, still aligned', () => {
    const a = kvBlockAlignment({ geometry: geometryOf(LLAMA_3_1_8B, 16, 'auto', 8), numGpuBlocks: null });
    expect(a.blockBytesPerLayer).toBe(2 * 16 * 1 * 128 * 2);
    expect(a.blockRequest.requestsPerSegment).toBe(256);
    expect(a.perBlock.aligned).toBe(true);
  });
});
