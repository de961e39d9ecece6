/**
 * How a KV-cache geometry sits on PyTorch's caching allocator: the bytes it rounds away, per block
 * and for the whole pool, and whether that is worth a flag. Pure.
 *
 * The allocator's rules (c10/cuda/CUDACachingAllocator.cpp, round_size and get_allocation_size;
 * shared/reference/frameworks.md section 1.3): every request is rounded up to a multiple of 512 B
 * (kMinBlockSize); one of at most 1 MiB (kSmallSize) is carved from 2 MiB segments (kSmallBuffer);
 * one below 10 MiB (kMinLargeAlloc) from 20 MiB segments (kLargeBuffer); a larger one gets a
 * segment of its own, rounded up to 2 MiB (kRoundLarge). Not modelled: roundup_power2_divisions,
 * expandable_segments, a large_segment_size_mb other than 20, and vLLM's sleep mode (CuMemAllocator
 * pools, outside the caching allocator).
 *
 * Two figures, and only the second is real for vLLM:
 * - Per block: what the allocator would round away if each layer's page of a block were requested
 *   on its own, one after another, as the "align KV cache block sizes to the allocator's chunk
 *   size" advice (shared/reference/when-heaps-lie.txt) imagines. No vLLM allocates that way: V1
 *   makes one tensor per layer of num_gpu_blocks pages (`torch.zeros(size, int8)` per
 *   KVCacheTensor, frameworks.md section 4.5), and V0's CacheEngine also made one tensor per layer.
 *   The figure is kept because it is what that advice is about, and for engines that do allocate
 *   pages one by one.
 * - Pool: what a V1 server loses, its per-layer tensors each rounded up by the rule for their size
 *   (for the sizes of real pools: to 2 MiB, so under 2 MiB per layer). A rounded-up tail over 1 MiB
 *   is split off and other tensors may use it, so this is an upper bound of what the KV cache
 *   strands. It assumes a uniform full-attention model (one tensor per layer); hybrid models share
 *   tensors across KV-cache groups, and the packed layout of newer builds differs.
 *
 * worthFixing looks at the pool alone (see WORTH_FIXING_*): the per-block figure does not happen in
 * a vLLM server, so on its own it is never worth a flag.
 */
import { formatBytes } from '../format-bytes.js';
import type { KvGeometry } from '../sources/hf-config.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** kMinBlockSize: every request is rounded up to a multiple of this. */
const MIN_BLOCK_BYTES = 512;
/** kSmallSize: requests up to this go to the small pool. */
const SMALL_SIZE_BYTES = 1 * MiB;
/** kSmallBuffer: the small pool's segment. */
const SMALL_SEGMENT_BYTES = 2 * MiB;
/** kMinLargeAlloc: requests below this share a kLargeBuffer segment. */
const MIN_LARGE_ALLOC_BYTES = 10 * MiB;
/** kLargeBuffer: the segment shared by requests between 1 and 10 MiB. */
const LARGE_SEGMENT_BYTES = 20 * MiB;
/** kRoundLarge: larger requests get a segment of their own, rounded up to this. */
const ROUND_LARGE_BYTES = 2 * MiB;

/**
 * The threshold for worthFixing: what the pool loses is at least 1% of it, or at least 256 MiB.
 * 1%: the KV pool is sized with gpu_memory_utilization, set in steps of 0.01 of the whole GPU,
 * which is more than 1% of the pool (the pool is a part of the GPU); a smaller loss is below the
 * step of the knob people already turn.
 * 256 MiB: the floor for pools over 25.6 GiB, where 1% is more: 2,048 tokens of Llama-3.1-8B at
 * bf16 (128 KiB a token), a long prompt's worth, is worth a flag whatever the pool's size. With a
 * pool's loss below 2 MiB per layer (so below 256 MiB under 128 layers), the 1% arm is the one
 * that fires in practice: on small pools (a small GPU, large weights, a low
 * gpu_memory_utilization), where one layer's tensor is under about 200 MiB.
 */
export const WORTH_FIXING_FRACTION = 0.01;
export const WORTH_FIXING_BYTES = 256 * MiB;

/** The block sizes vLLM accepts that alignment may suggest: powers of two from 8 to 256. */
const BLOCK_SIZES: readonly number[] = [8, 16, 32, 64, 128, 256];

/**
 * The allocator's size class of a request: "small" (at most 1 MiB, 512 B rounding, 2 MiB
 * segments), "large-shared" (1 to 10 MiB, 512 B rounding, 20 MiB segments), "large-own" (10 MiB and
 * more, a segment of its own rounded up to 2 MiB).
 */
export type AllocatorSizeClass = 'small' | 'large-shared' | 'large-own';

export interface AllocatorRequest {
  requestedBytes: number;
  sizeClass: AllocatorSizeClass;
  /** The rounding that applies: 512 B (small, large-shared) or 2 MiB (large-own). */
  granularityBytes: number;
  /** round_size: the request rounded up to 512 B, what the allocator's block holds. */
  roundedBytes: number;
  /** get_allocation_size: what one cudaMalloc reserves for it (2 MiB, 20 MiB, or the request to 2 MiB). */
  segmentBytes: number;
  /** Whole requests of this size one segment holds (1 for large-own). */
  requestsPerSegment: number;
}

export interface KvBlockAlignment {
  /** Tokens per block. */
  blockSize: number;
  numLayers: number;
  /** One layer's page of one block: what one layer's tensor holds per block. */
  blockBytesPerLayer: number;
  /** One block over every layer this GPU holds (KvGeometry.bytesPerBlock, from its parts). */
  blockBytesAllLayers: number;
  /** One layer's page requested on its own. */
  blockRequest: AllocatorRequest;
  /** Per block, if each layer's page were allocated on its own, one after another (no vLLM does). */
  perBlock: {
    /** Rounding up to 512 B, per layer's page. */
    roundingLossBytesPerLayer: number;
    /** What whole pages leave at the end of each segment (0 for large-own: the rounding covers it). */
    segmentTailBytes: number;
    /** Segment bytes per page minus the page: rounding plus the page's share of the tail. A mean: may be fractional. */
    lostBytesPerLayer: number;
    /** lostBytesPerLayer x layers. */
    lostBytesAllLayers: number;
    /** lostBytesPerLayer / blockBytesPerLayer. */
    lostFraction: number;
    aligned: boolean;
  };
  /** The pool as vLLM V1 allocates it: one tensor per layer; null without num_gpu_blocks. */
  pool: {
    numGpuBlocks: number;
    /** One per layer (uniform full-attention models). */
    tensorCount: number;
    /** num_gpu_blocks x blockBytesPerLayer. */
    tensorBytes: number;
    tensorRequest: AllocatorRequest;
    /** tensorCount x tensorBytes: what vLLM asks for. */
    requestedBytes: number;
    /** The segments the allocator reserves for those tensors, allocated one after another. */
    reservedBytes: number;
    /** reservedBytes - requestedBytes: an upper bound of what the KV cache strands. */
    lostBytes: number;
    /** lostBytes / requestedBytes. */
    lostFraction: number;
    /**
     * The num_gpu_blocks whose tensors fill the same 2 MiB-rounded segments (large-own tensors with a
     * loss only; else null): --num-gpu-blocks-override N gives more blocks for no more memory.
     */
    sameMemoryNumGpuBlocks: number | null;
  } | null;
  /**
   * The block size from 8 to 256 (a power of two), nearest the current one by factors of two (the
   * smaller on a tie), at which perBlock.lostBytesPerLayer is 0; null when the current one is
   * already aligned or none is.
   */
  alignedBlockSize: number | null;
  /** The pool loses at least 1% of itself or 256 MiB (WORTH_FIXING_*); always false without a pool. */
  worthFixing: boolean;
  /** One sentence with the per-block and pool losses and the flags that would align them; null unless worthFixing. */
  advice: string | null;
}

const roundUp = (value: number, multiple: number) => Math.ceil(value / multiple) * multiple;

/** How the caching allocator serves one request of `bytes` (bytes >= 1). */
export function allocatorRequest(bytes: number): AllocatorRequest {
  const roundedBytes = bytes < MIN_BLOCK_BYTES ? MIN_BLOCK_BYTES : roundUp(bytes, MIN_BLOCK_BYTES);
  if (roundedBytes <= SMALL_SIZE_BYTES) {
    return { requestedBytes: bytes, sizeClass: 'small', granularityBytes: MIN_BLOCK_BYTES, roundedBytes, segmentBytes: SMALL_SEGMENT_BYTES, requestsPerSegment: Math.floor(SMALL_SEGMENT_BYTES / roundedBytes) };
  }
  if (roundedBytes < MIN_LARGE_ALLOC_BYTES) {
    return { requestedBytes: bytes, sizeClass: 'large-shared', granularityBytes: MIN_BLOCK_BYTES, roundedBytes, segmentBytes: LARGE_SEGMENT_BYTES, requestsPerSegment: Math.floor(LARGE_SEGMENT_BYTES / roundedBytes) };
  }
  return { requestedBytes: bytes, sizeClass: 'large-own', granularityBytes: ROUND_LARGE_BYTES, roundedBytes, segmentBytes: roundUp(roundedBytes, ROUND_LARGE_BYTES), requestsPerSegment: 1 };
}

/** Bytes reserved for `count` requests like `request`, one after another on segments of their own. */
function reservedFor(request: AllocatorRequest, count: number): number {
  return Math.ceil(count / request.requestsPerSegment) * request.segmentBytes;
}

function pageLoss(request: AllocatorRequest): number {
  return request.segmentBytes / request.requestsPerSegment - request.requestedBytes;
}

/** The aligned block size nearest `current` by factors of two, the smaller on a tie. */
function nearestAligned(bytesPerTokenPerLayer: number, current: number): number | null {
  const aligned = BLOCK_SIZES.filter((size) => pageLoss(allocatorRequest(bytesPerTokenPerLayer * size)) === 0);
  const distance = (size: number) => Math.abs(Math.log2(size / current));
  return aligned.reduce<number | null>((best, size) => (best === null || distance(size) < distance(best) ? size : best), null);
}

const bytes = (value: number) => formatBytes(Math.round(value));
const percent = (fraction: number) => `${(fraction * 100).toFixed(fraction < 0.001 ? 3 : 1)}%`;

function adviceFor(alignment: Omit<KvBlockAlignment, 'advice'>): string {
  const pool = alignment.pool!;
  const perBlock = alignment.perBlock.aligned
    ? 'blocks allocated one by one would lose nothing'
    : `blocks allocated one by one would lose ${bytes(alignment.perBlock.lostBytesAllLayers)} each (${percent(alignment.perBlock.lostFraction)})` +
      (alignment.alignedBlockSize !== null ? `, which --block-size ${alignment.alignedBlockSize} would align` : ', and no block size from 8 to 256 aligns them');
  const override = pool.sameMemoryNumGpuBlocks !== null ? `, and --num-gpu-blocks-override ${pool.sameMemoryNumGpuBlocks} fills them (${pool.sameMemoryNumGpuBlocks - pool.numGpuBlocks} more blocks, no more memory)` : '';
  return (
    `The KV pool loses ${bytes(pool.lostBytes)} (${percent(pool.lostFraction)} of ${bytes(pool.requestedBytes)}) to the allocator's rounding: ` +
    `each of its ${pool.tensorCount} per-layer tensors of ${bytes(pool.tensorBytes)} takes ${bytes(pool.reservedBytes / pool.tensorCount)}${override}; ${perBlock}.`
  );
}

export function kvBlockAlignment(input: { geometry: KvGeometry; numGpuBlocks: number | null }): KvBlockAlignment {
  const { geometry, numGpuBlocks } = input;
  const bytesPerTokenPerLayer = geometry.kvFactor * geometry.numKvHeads * geometry.headSize * geometry.dtypeBytes;
  const blockBytesPerLayer = bytesPerTokenPerLayer * geometry.blockSize;
  const blockRequest = allocatorRequest(blockBytesPerLayer);
  const lostBytesPerLayer = pageLoss(blockRequest);
  const aligned = lostBytesPerLayer === 0;
  const perBlock = {
    roundingLossBytesPerLayer: blockRequest.roundedBytes - blockBytesPerLayer,
    segmentTailBytes: blockRequest.sizeClass === 'large-own' ? 0 : blockRequest.segmentBytes - blockRequest.requestsPerSegment * blockRequest.roundedBytes,
    lostBytesPerLayer,
    lostBytesAllLayers: lostBytesPerLayer * geometry.numLayers,
    lostFraction: lostBytesPerLayer / blockBytesPerLayer,
    aligned,
  };
  let pool: KvBlockAlignment['pool'] = null;
  if (numGpuBlocks !== null && numGpuBlocks > 0) {
    const tensorBytes = numGpuBlocks * blockBytesPerLayer;
    const tensorRequest = allocatorRequest(tensorBytes);
    const requestedBytes = geometry.numLayers * tensorBytes;
    const reservedBytes = reservedFor(tensorRequest, geometry.numLayers);
    const lostBytes = reservedBytes - requestedBytes;
    const fill = Math.floor(tensorRequest.segmentBytes / blockBytesPerLayer);
    pool = {
      numGpuBlocks,
      tensorCount: geometry.numLayers,
      tensorBytes,
      tensorRequest,
      requestedBytes,
      reservedBytes,
      lostBytes,
      lostFraction: lostBytes / requestedBytes,
      sameMemoryNumGpuBlocks: tensorRequest.sizeClass === 'large-own' && fill > numGpuBlocks ? fill : null,
    };
  }
  const worthFixing = pool !== null && pool.lostBytes > 0 && (pool.lostFraction >= WORTH_FIXING_FRACTION || pool.lostBytes >= WORTH_FIXING_BYTES);
  const alignment = {
    blockSize: geometry.blockSize,
    numLayers: geometry.numLayers,
    blockBytesPerLayer,
    blockBytesAllLayers: blockBytesPerLayer * geometry.numLayers,
    blockRequest,
    perBlock,
    pool,
    alignedBlockSize: aligned ? null : nearestAligned(bytesPerTokenPerLayer, geometry.blockSize),
    worthFixing,
  };
  return { ...alignment, advice: worthFixing ? adviceFor(alignment) : null };
}
