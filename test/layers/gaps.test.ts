/** The gap arithmetic on known figures, and the reasons when an input is missing. */
import { describe, expect, it } from 'vitest';

import { computeGaps } from '../../src/layers/gaps.js';
import type { AllocatorLayer, Layers } from '../../src/layers/schema.js';
import type { FieldErrors } from '../../src/sample/schema.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;

function allocator(overrides: Partial<AllocatorLayer> = {}): AllocatorLayer {
  return {
    reservedBytes: 60 * GiB,
    allocatedBytes: 52 * GiB,
    activeBytes: 52 * GiB,
    inactiveSplitBytes: 3 * GiB,
    requestedBytes: 51 * GiB,
    numAllocRetries: 0,
    numOoms: 0,
    privatePoolBytes: 800 * MiB,
    largestFreeBlockBytes: null,
    privatePoolAllocatedBytes: null,
    lastOom: null,
    source: { file: 'f', writtenAt: 'w', ageSeconds: 1, torchVersion: '2.5' },
    ...overrides,
  };
}

describe('computeGaps', () => {
  it('a vLLM worker: driver 72.4 GiB, reserved 60 GiB, context 500 MiB, pools 800 MiB', () => {
    const layers: Layers = { driverBytes: 72 * GiB + 400 * MiB, contextBytes: 500 * MiB, allocator: allocator(), framework: null };
    const errors: FieldErrors = {};
    expect(computeGaps(layers, errors)).toEqual({
      outsideAllocatorBytes: 12 * GiB + 400 * MiB,
      cudaGraphs: {
        insideAllocatorBytes: 800 * MiB,
        outsideAllocatorEstimateBytes: 12 * GiB + 400 * MiB - 500 * MiB,
        totalEstimateBytes: 800 * MiB + 12 * GiB + 400 * MiB - 500 * MiB,
      },
      allocatorCachedBytes: 60 * GiB - 52 * GiB - 800 * MiB,
      fragmentationRatio: 3 / 60,
    });
    expect(errors).toEqual({});
  });

  it('without the companion only the reasons remain', () => {
    const errors: FieldErrors = {};
    const gaps = computeGaps({ driverBytes: GiB, contextBytes: 500 * MiB, allocator: null, framework: null }, errors);
    expect(gaps).toEqual({
      outsideAllocatorBytes: null,
      cudaGraphs: { insideAllocatorBytes: null, outsideAllocatorEstimateBytes: null, totalEstimateBytes: null },
      allocatorCachedBytes: null,
      fragmentationRatio: null,
    });
    // One reason for all of them: every gap needs the allocator layer.
    expect(errors).toEqual({ gaps: { code: 'INPUT_MISSING', nvmlReturn: null, message: 'every gap needs the allocator layer (the companion)' } });
  });

  it('without calibration: the outside gap is measured, the graph estimate is not made', () => {
    const errors: FieldErrors = {};
    const gaps = computeGaps({ driverBytes: 61 * GiB, contextBytes: null, allocator: allocator(), framework: null }, errors);
    expect(gaps.outsideAllocatorBytes).toBe(GiB);
    expect(gaps.cudaGraphs).toEqual({ insideAllocatorBytes: 800 * MiB, outsideAllocatorEstimateBytes: null, totalEstimateBytes: null });
    expect(errors['gaps.cudaGraphs.outsideAllocatorEstimateBytes']?.message).toBe('needs the context size (gpu-layers calibrate)');
  });

  it('an older torch without private-pool figures: no cached figure, no graph total', () => {
    const errors: FieldErrors = {};
    const gaps = computeGaps({ driverBytes: 61 * GiB, contextBytes: 0, allocator: allocator({ privatePoolBytes: null }), framework: null }, errors);
    expect([gaps.allocatorCachedBytes, gaps.cudaGraphs.totalEstimateBytes, gaps.cudaGraphs.outsideAllocatorEstimateBytes]).toEqual([null, null, GiB]);
    expect(errors['gaps.allocatorCachedBytes']?.message).toMatch(/private-pool bytes/);
  });

  it('an allocator without a reserved figure: the gaps that need it name it', () => {
    const errors: FieldErrors = {};
    computeGaps({ driverBytes: GiB, contextBytes: 0, allocator: allocator({ reservedBytes: null }), framework: null }, errors);
    expect(errors['gaps.outsideAllocatorBytes']).toEqual({ code: 'INPUT_MISSING', nvmlReturn: null, message: 'needs the allocator reserved bytes (companion)' });
  });

  it('a stale companion can make a difference negative: reported as measured, not clamped', () => {
    const gaps = computeGaps({ driverBytes: 59 * GiB, contextBytes: 0, allocator: allocator(), framework: null }, {});
    expect(gaps.outsideAllocatorBytes).toBe(-GiB);
  });

  it('an allocator that reserves nothing has no fragmentation ratio', () => {
    const errors: FieldErrors = {};
    expect(computeGaps({ driverBytes: GiB, contextBytes: 0, allocator: allocator({ reservedBytes: 0, allocatedBytes: 0, privatePoolBytes: 0, inactiveSplitBytes: 0 }), framework: null }, errors).fragmentationRatio).toBeNull();
    expect(errors['gaps.fragmentationRatio']?.code).toBe('NOT_DEFINED');
  });
});

describe('allocatorCachedBytes with the private pools\' allocated bytes (an H200 right after graph capture)', () => {
  // docs/validation/h200-2026-11-26.md, phase "graphs": torch's own figures and the snapshot's pool.
  const h200 = { reservedBytes: 26122125312, allocatedBytes: 26066547712, privatePoolBytes: 60817408 };

  it('without them the figure counts the pools\' allocations twice and goes below zero', () => {
    expect(computeGaps({ driverBytes: 26904363008, contextBytes: null, allocator: allocator(h200), framework: null }, {}).allocatorCachedBytes).toBe(-5239808);
  });

  it('with them it is the free bytes cached outside the pools', () => {
    const gaps = computeGaps({ driverBytes: 26904363008, contextBytes: null, allocator: allocator({ ...h200, privatePoolAllocatedBytes: 59670528 }), framework: null }, {});
    expect(gaps.allocatorCachedBytes).toBe(26122125312 - 26066547712 - (60817408 - 59670528));
  });
});
