/**
 * The layered sample: the driver sample with, per process, the layers (driver, context,
 * allocator, framework), the gaps between them and the host memory split, and per device the
 * memory no process accounts for. What `gpu-layers probe --json` prints; the source of the types
 * and of the published JSON Schema. Bytes are integers; unknown is null with the reason in the
 * `errors` map of the object holding it (for a process: keys like "layers.allocator",
 * "gaps.outsideAllocatorBytes", "host").
 */
import * as z from 'zod/mini';

import { deviceSchema, fieldErrorSchema, migDeviceSchema, processSchema, sampleSchema } from '../sample/schema.js';

const errors = z.record(z.string(), fieldErrorSchema);
const bytes = z.nullable(z.int().check(z.nonnegative()));
/** A difference of two measurements: negative when the inputs disagree (a stale input). */
const signedBytes = z.nullable(z.int());

export const hostLayerSchema = z.object({
  rssBytes: bytes,
  anonBytes: bytes,
  fileBytes: bytes,
  shmemBytes: bytes,
  /** Resident in mappings of /dev/nvidia* (pinned host memory, UVM, driver buffers). */
  driverMappedBytes: bytes,
  /** 64-hex container id from the cgroup path; null outside a container. */
  containerId: z.nullable(z.string()),
  /** Kubernetes pod UID from the cgroup path; null outside a pod. */
  podUid: z.nullable(z.string()),
  /** The pid in each nested PID namespace, outermost first. */
  nspid: z.nullable(z.array(z.int())),
  /** Clock ticks since boot (field 22 of /proc/<pid>/stat): tells a reused pid apart. */
  startTimeTicks: z.nullable(z.int()),
  errors,
});

/** PyTorch's caching allocator on this device, as the companion inside the process saw it. */
export const allocatorLayerSchema = z.object({
  /** torch memory_reserved(): reserved_bytes.all.current. */
  reservedBytes: bytes,
  /** torch memory_allocated(): allocated_bytes.all.current (live tensors). */
  allocatedBytes: bytes,
  activeBytes: bytes,
  /** Free but trapped in split segments: not returnable by empty_cache(). */
  inactiveSplitBytes: bytes,
  requestedBytes: bytes,
  numAllocRetries: z.nullable(z.int()),
  numOoms: z.nullable(z.int()),
  /** Reserved by private pools (CUDA graph capture, MemPool); null where torch does not say. */
  privatePoolBytes: bytes,
  /** Largest free block in the allocator's segments: the biggest request served without growing
   * the pool (null unless the companion runs with GPU_LAYERS_STATS_SEGMENTS=1). */
  largestFreeBlockBytes: bytes,
  /** Of privatePoolBytes, what live tensors hold (graph outputs, static buffers); null unless the
   * companion reads the segments (GPU_LAYERS_STATS_SEGMENTS=1). */
  privatePoolAllocatedBytes: bytes,
  source: z.object({
    file: z.string(),
    writtenAt: z.string(),
    ageSeconds: z.number(),
    torchVersion: z.nullable(z.string()),
  }),
});

/** vLLM's figures for the engine this process belongs to. */
export const frameworkLayerSchema = z.object({
  engine: z.literal('vllm'),
  /**
   * How this process was tied to the server: it or an ancestor listens on the server's port
   * (the strongest), the startup log names its pid, or only its command line mentions vLLM.
   */
  matchedBy: z.enum(['listening-socket', 'log-pid', 'command-line']),
  weightsBytes: bytes,
  kvCacheBytes: bytes,
  /** Where kvCacheBytes comes from: the startup log's own figure, or blocks x bytes per block. */
  kvCacheSource: z.nullable(z.enum(['log', 'blocks-x-config'])),
  /** Occupancy of the KV arena, 0..1 (vllm:kv_cache_usage_perc). */
  kvCacheUsage: z.nullable(z.number().check(z.minimum(0), z.maximum(1))),
  numGpuBlocks: z.nullable(z.int()),
  blockSize: z.nullable(z.int()),
  requestsRunning: z.nullable(z.number()),
  requestsWaiting: z.nullable(z.number()),
  /** vLLM's own measure of graph capture ("Graph capturing finished ..., took N GiB"). */
  cudaGraphBytes: bytes,
  /** vLLM's profile of memory outside torch ("non_torch_memory"). */
  nonTorchBytes: signedBytes,
  sources: z.object({ metrics: z.nullable(z.string()), log: z.nullable(z.string()) }),
});

export const layersSchema = z.object({
  /** NVML usedGpuMemory: everything the process holds on the device. */
  driverBytes: bytes,
  /** A bare CUDA context on this device and driver (gpu-layers calibrate). */
  contextBytes: bytes,
  allocator: z.nullable(allocatorLayerSchema),
  framework: z.nullable(frameworkLayerSchema),
});

export const gapsSchema = z.object({
  /** driver - allocator reserved: memory the process holds that PyTorch does not see. */
  outsideAllocatorBytes: signedBytes,
  cudaGraphs: z.object({
    /** Private-pool reservations inside the allocator (measured). */
    insideAllocatorBytes: bytes,
    /** outsideAllocator - context: graph exec objects, NCCL, other libraries (an estimate). */
    outsideAllocatorEstimateBytes: signedBytes,
    /** The two together (an estimate). */
    totalEstimateBytes: signedBytes,
  }),
  /**
   * Cached free blocks outside private pools: reserved - allocated - (private pools - allocated
   * in them). Without the last figure (no segments) it is reserved - allocated - private pools,
   * which counts what is allocated inside the pools twice and reads low (below zero on an H200
   * right after graph capture: docs/validation).
   */
  allocatorCachedBytes: signedBytes,
  /** inactive split / reserved: free memory trapped in split segments, 0..1. */
  fragmentationRatio: z.nullable(z.number()),
});

const layeredFields = {
  layers: layersSchema,
  gaps: gapsSchema,
  host: z.nullable(hostLayerSchema),
};

export const layeredProcessSchema = z.extend(processSchema, layeredFields);

export const layeredMigDeviceSchema = z.extend(migDeviceSchema, {
  processes: z.nullable(z.array(layeredProcessSchema)),
});

export const layeredDeviceSchema = z.extend(deviceSchema, {
  processes: z.nullable(z.array(layeredProcessSchema)),
  mig: z.nullable(
    z.object({
      enabled: z.boolean(),
      pendingEnabled: z.nullable(z.boolean()),
      devices: z.array(layeredMigDeviceSchema),
    }),
  ),
  /** A bare context's cost here, from the calibration cache (null: not calibrated). */
  contextBytes: bytes,
  /** Device used - the processes' used: memory no listed process accounts for. */
  unattributedBytes: signedBytes,
});

const sourceStatus = z.object({
  /** What was read (a folder, a URL, a file), or null when this source was not asked for. */
  location: z.nullable(z.string()),
  ok: z.boolean(),
  error: z.nullable(fieldErrorSchema),
});

export const layeredSampleSchema = z.extend(sampleSchema, {
  devices: z.array(layeredDeviceSchema),
  /** Each outside source, read or not, and why not. */
  sources: z.object({
    companion: sourceStatus,
    vllmMetrics: z.array(sourceStatus),
    vllmLog: z.nullable(sourceStatus),
    hfConfig: z.nullable(sourceStatus),
    calibration: sourceStatus,
  }),
});

export type HostLayer = z.infer<typeof hostLayerSchema>;
export type AllocatorLayer = z.infer<typeof allocatorLayerSchema>;
export type FrameworkLayer = z.infer<typeof frameworkLayerSchema>;
export type Layers = z.infer<typeof layersSchema>;
export type Gaps = z.infer<typeof gapsSchema>;
export type LayeredProcess = z.infer<typeof layeredProcessSchema>;
export type LayeredMigDevice = z.infer<typeof layeredMigDeviceSchema>;
export type LayeredDevice = z.infer<typeof layeredDeviceSchema>;
export type LayeredSample = z.infer<typeof layeredSampleSchema>;
export type SourceStatus = z.infer<typeof sourceStatus>;
