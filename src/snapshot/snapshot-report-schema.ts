/**
 * What `gpu-layers snapshot --json` prints and analyzeSnapshot() returns: per device the
 * allocator's figures from a PyTorch memory snapshot. The names under `devices[]` are fixed
 * (reservedBytes, allocatedBytes, freeBytes, largestFreeBlockBytes, fragmentationRatio,
 * privatePools[], segmentCount); bytes are integers.
 */
import * as z from 'zod/mini';

export const SNAPSHOT_REPORT_VERSION = 1;

const bytes = z.int().check(z.nonnegative());
const poolId = z.tuple([z.int(), z.int()]);

export const snapshotDeviceSchema = z.object({
  device: z.int(),
  segmentCount: z.int(),
  reservedBytes: bytes,
  /** Blocks owned by tensors ("active_allocated"). */
  allocatedBytes: bytes,
  /** Allocated plus freed but still in use by another stream ("active_pending_free"). */
  activeBytes: bytes,
  /** What the allocated blocks were asked for, before rounding. */
  requestedBytes: bytes,
  /** Free ("inactive") blocks, every pool. */
  freeBytes: bytes,
  largestFreeBlockBytes: bytes,
  /** 1 - largest free block / free bytes; null when nothing is free. */
  fragmentationRatio: z.nullable(z.number()),
  /** The largest free block in the default pool's large segments: the biggest request served
   * without growing the pool. */
  largestAllocatableBytes: bytes,
  privatePools: z.array(
    z.object({
      poolId,
      /** (N, 0): made by a CUDA graph capture; (0, N): graph_pool_handle() or a MemPool. */
      kind: z.enum(['cuda-graph', 'mempool']),
      segmentCount: z.int(),
      reservedBytes: bytes,
      allocatedBytes: bytes,
      freeBytes: bytes,
    }),
  ),
  expandableSegments: z.object({ segmentCount: z.int(), reservedBytes: bytes }),
  /** Segments with the most free bytes in the most pieces. */
  swissCheese: z.array(
    z.object({ address: bytes, poolId, totalBytes: bytes, freeBytes: bytes, freePieces: z.int(), largestFreeBlockBytes: bytes }),
  ),
  /** The allocation requests in the trace ring buffer (recent history). */
  recentRequests: z.object({ count: z.int(), largestBytes: bytes, overLargestAllocatable: z.int() }),
  ooms: z.array(z.object({ sizeBytes: bytes, deviceFreeBytes: z.nullable(bytes), timeUs: z.nullable(z.number()) })),
  topAllocationSites: z.array(z.object({ site: z.string(), bytes, blocks: z.int() })),
});

export const snapshotReportSchema = z.object({
  schemaVersion: z.literal(SNAPSHOT_REPORT_VERSION),
  /** The file read, or null for a buffer. */
  file: z.nullable(z.string()),
  sizeBytes: bytes,
  protocol: z.int(),
  devices: z.array(snapshotDeviceSchema),
});

export type SnapshotDevice = z.infer<typeof snapshotDeviceSchema>;
export type SnapshotReport = z.infer<typeof snapshotReportSchema>;
