/**
 * The lines `gpu-layers probe` prints for a KV block alignment (layers/kv-block-alignment.ts):
 * the block's bytes, the allocator's size class for one page, the loss if pages were allocated one
 * by one (what no vLLM does), the pool's loss as vLLM V1 allocates it, and whether it is worth a
 * flag. Plain text, no colour.
 */
import { formatBytes } from '../../format-bytes.js';
import { WORTH_FIXING_BYTES, WORTH_FIXING_FRACTION, type AllocatorRequest, type KvBlockAlignment } from '../../layers/kv-block-alignment.js';

const bytes = (value: number) => formatBytes(Math.round(value));
const percent = (fraction: number) => `${(fraction * 100).toFixed(fraction > 0 && fraction < 0.001 ? 3 : 1)}%`;

function sizeClass(request: AllocatorRequest): string {
  if (request.sizeClass === 'large-own') return `a segment of its own rounded up to 2 MiB (${bytes(request.segmentBytes)})`;
  return `512 B rounding, ${request.requestsPerSegment} to a ${bytes(request.segmentBytes)} segment`;
}

export function kvAlignmentLines(alignment: KvBlockAlignment): string[] {
  const { perBlock, pool } = alignment;
  const lines = [
    `KV block alignment: ${alignment.blockSize}-token blocks of ${bytes(alignment.blockBytesPerLayer)} per layer, ${bytes(alignment.blockBytesAllLayers)} over ${alignment.numLayers} layers`,
    `  allocator, one layer's page: ${sizeClass(alignment.blockRequest)}`,
  ];
  const fix = alignment.alignedBlockSize !== null ? `--block-size ${alignment.alignedBlockSize} aligns` : 'no block size from 8 to 256 aligns';
  lines.push(
    perBlock.aligned
      ? '  pages allocated one by one (not how vLLM allocates): aligned, nothing lost'
      : `  pages allocated one by one (not how vLLM allocates): ${bytes(perBlock.lostBytesPerLayer)} lost per page (${percent(perBlock.lostFraction)}), ${bytes(perBlock.lostBytesAllLayers)} per block; ${fix}`,
  );
  if (pool === null) {
    lines.push('  pool (vLLM V1, one tensor per layer): n/a (num_gpu_blocks unknown)');
  } else {
    lines.push(
      `  pool (vLLM V1, one tensor per layer): ${pool.tensorCount} x ${pool.numGpuBlocks} blocks (${bytes(pool.tensorBytes)} each), ` +
        (pool.lostBytes === 0 ? 'aligned, nothing lost' : `${bytes(pool.lostBytes)} lost to rounding (${percent(pool.lostFraction)} of ${bytes(pool.requestedBytes)})`),
    );
  }
  if (alignment.worthFixing) {
    lines.push(`  worth fixing: ${alignment.advice}`);
  } else if (pool !== null && pool.lostBytes > 0) {
    lines.push(`  not worth fixing: under ${percent(WORTH_FIXING_FRACTION)} of the pool and under ${bytes(WORTH_FIXING_BYTES)}`);
  }
  return lines;
}
