/**
 * The gaps between a process's layers (docs/layers.md), as pure arithmetic
 * over measured figures. A gap whose inputs are not all known is null with the reason naming
 * what is missing; an estimate is only ever labelled as one (cudaGraphs.*Estimate*).
 */
import type { FieldErrors } from '../sample/schema.js';
import type { Gaps, Layers } from './schema.js';

function missing(errors: FieldErrors, key: string, needs: string[]): null {
  errors[key] = { code: 'INPUT_MISSING', nvmlReturn: null, message: `needs ${needs.join(' and ')}` };
  return null;
}

/**
 * A gap beyond 2^53 bytes is no size (the figures it comes from, out of a companion file, are
 * not true ones): null with the reason, rather than an inexact number the schema refuses.
 */
function exact(errors: FieldErrors, key: string, value: number | null): number | null {
  if (value === null || Number.isSafeInteger(value)) return value;
  errors[key] = { code: 'VALUE_OUT_OF_RANGE', nvmlReturn: null, message: 'its inputs are too large to be true' };
  return null;
}

/** a - b - ..., or null (with the reason) when any input is unknown. */
function difference(errors: FieldErrors, key: string, inputs: [string, number | null | undefined][]): number | null {
  const unknown = inputs.filter(([, value]) => value === null || value === undefined).map(([name]) => name);
  if (unknown.length > 0) return missing(errors, key, unknown);
  const [first, ...rest] = inputs.map(([, value]) => value as number);
  return exact(errors, key, rest.reduce((total, value) => total - value, first!));
}

function noGaps(): Gaps {
  return {
    outsideAllocatorBytes: null,
    cudaGraphs: { insideAllocatorBytes: null, outsideAllocatorEstimateBytes: null, totalEstimateBytes: null },
    allocatorCachedBytes: null,
    fragmentationRatio: null,
  };
}

/**
 * Gaps for one process; reasons go into `errors` under "gaps.<field>", or once under "gaps" when
 * the allocator layer itself is missing (every gap needs it).
 */
export function computeGaps(layers: Layers, errors: FieldErrors): Gaps {
  const allocator = layers.allocator;
  if (allocator === null) {
    errors.gaps = { code: 'INPUT_MISSING', nvmlReturn: null, message: 'every gap needs the allocator layer (the companion)' };
    return noGaps();
  }
  const reserved: [string, number | null] = ['the allocator reserved bytes (companion)', allocator.reservedBytes];
  const outsideAllocator = difference(errors, 'gaps.outsideAllocatorBytes', [['the driver figure', layers.driverBytes], reserved]);
  const privatePools: [string, number | null] = ['private-pool bytes (a torch that reports them)', allocator.privatePoolBytes];
  const insideAllocator = privatePools[1];
  if (insideAllocator === null) missing(errors, 'gaps.cudaGraphs.insideAllocatorBytes', [privatePools[0]]);
  const outsideEstimate = difference(errors, 'gaps.cudaGraphs.outsideAllocatorEstimateBytes', [
    ['the outside-allocator gap', outsideAllocator],
    ['the context size (gpu-layers calibrate)', layers.contextBytes],
  ]);
  const totalEstimate =
    insideAllocator !== null && outsideEstimate !== null
      ? exact(errors, 'gaps.cudaGraphs.totalEstimateBytes', insideAllocator + outsideEstimate)
      : missing(errors, 'gaps.cudaGraphs.totalEstimateBytes', ['both CUDA graph parts']);
  const reservedFreeOrPools = difference(errors, 'gaps.allocatorCachedBytes', [
    reserved,
    ['the allocated bytes (companion)', allocator.allocatedBytes],
    privatePools,
  ]);
  // What the pools hold allocated is in `allocated` already: add it back where it is known.
  const cached = reservedFreeOrPools === null ? null : exact(errors, 'gaps.allocatorCachedBytes', reservedFreeOrPools + (allocator.privatePoolAllocatedBytes ?? 0));
  let fragmentationRatio: number | null = null;
  const inactiveSplit = allocator.inactiveSplitBytes;
  if (reserved[1] === null || inactiveSplit === null) {
    missing(errors, 'gaps.fragmentationRatio', ['the allocator reserved and inactive-split bytes (companion)']);
  } else if (reserved[1] === 0) {
    errors['gaps.fragmentationRatio'] = { code: 'NOT_DEFINED', nvmlReturn: null, message: 'the allocator reserves nothing' };
  } else {
    fragmentationRatio = inactiveSplit / reserved[1];
  }
  return {
    outsideAllocatorBytes: outsideAllocator,
    cudaGraphs: { insideAllocatorBytes: insideAllocator, outsideAllocatorEstimateBytes: outsideEstimate, totalEstimateBytes: totalEstimate },
    allocatorCachedBytes: cached,
    fragmentationRatio,
  };
}
