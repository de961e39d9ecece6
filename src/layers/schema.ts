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

/**
 * A field added after schema 1 was first published: recordings made before it lack it, and read
 * it as unknown (null) rather than failing.
 */
const added = <T extends z.ZodMiniNullable>(schema: T) => z._default(schema, null as never);

/** glibc's own statistics (mallinfo2), read in-process by the companion. */
export const mallocLayerSchema = z.object({
  source: z.literal('mallinfo2'),
  /** Bytes malloc holds from the system: the arenas (brk heap and thread heaps) ... */
  arenaBytes: z.int().check(z.nonnegative()),
  /** ... plus its chunks mmapped one by one (requests above M_MMAP_THRESHOLD). */
  mmappedBytes: z.int().check(z.nonnegative()),
  mmappedChunks: z.int().check(z.nonnegative()),
  /** Allocated and not freed: arena chunks in use + mmapped chunks. */
  inUseBytes: z.int().check(z.nonnegative()),
  /** Free inside the arenas: held by malloc, not by the program (its fragmentation). */
  freeBytes: z.int().check(z.nonnegative()),
  /** Free at the top of the main arena: what malloc_trim() can give back. */
  releasableBytes: z.int().check(z.nonnegative()),
  arenaCount: z.nullable(z.int().check(z.nonnegative())),
});

/** Python's own allocator, as the companion saw it. */
export const pythonLayerSchema = z.object({
  /** sys.getallocatedblocks(): pymalloc blocks in use (a count; pymalloc's arenas are mmapped). */
  allocatedBlocks: z.int().check(z.nonnegative()),
  /** tracemalloc's traced bytes, only when the workload started tracemalloc (never started for it). */
  tracedBytes: bytes,
});

/** The memory of the process's cgroup: what the kubelet and the OOM killer judge it by. */
export const containerMemorySchema = z.object({
  cgroupVersion: z.union([z.literal(1), z.literal(2)]),
  /** The cgroup path from /proc/<pid>/cgroup. */
  path: z.string(),
  usageBytes: bytes,
  /** usage - inactive file (container_memory_working_set_bytes: what the kubelet evicts on). */
  workingSetBytes: bytes,
  /** null: no limit (the reason says so), or unknown. */
  limitBytes: bytes,
  /** memory.events: times the cgroup hit its limit and the OOM killer was invoked, and kills. */
  oomEvents: z.nullable(z.int().check(z.nonnegative())),
  oomKills: z.nullable(z.int().check(z.nonnegative())),
  errors,
});

export const hostLayerSchema = z.object({
  rssBytes: bytes,
  anonBytes: bytes,
  fileBytes: bytes,
  shmemBytes: bytes,
  /** Resident in mappings of /dev/nvidia* (pinned host memory, UVM, driver buffers). */
  driverMappedBytes: bytes,
  /** Of anonBytes, in the brk heap ([heap] in /proc/<pid>/smaps): malloc's main arena. */
  heapBytes: added(bytes),
  /** Of anonBytes, in anonymous mappings outside the heap and the stack: malloc's thread arenas
   * and mmapped chunks, and every mmap outside malloc (pymalloc arenas, registration caches, JITs). */
  anonMappingsBytes: added(bytes),
  anonMappingsCount: added(z.nullable(z.int().check(z.nonnegative()))),
  /** The allocator layer of the host: glibc malloc (from the companion). */
  malloc: added(z.nullable(mallocLayerSchema)),
  /** Python's allocator (from the companion). */
  python: added(z.nullable(pythonLayerSchema)),
  /** anonBytes - malloc's footprint (its arenas and mmapped chunks): anonymous memory malloc does
   * not hold at all (mmaps of other libraries, pymalloc arenas, pinned buffers, JIT code); negative
   * where malloc holds pages that are not resident. */
  outsideMallocBytes: added(signedBytes),
  /** The process's cgroup memory; null outside any memory-accounted cgroup, or unknown. */
  container: added(z.nullable(containerMemorySchema)),
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
  /** The last CUDA out-of-memory the companion saw in this process (PyTorch's out-of-memory
   * observer, called as the allocator is about to raise): null when none, or an older companion. */
  lastOom: added(
    z.nullable(
      z.object({
        /** Out-of-memory errors the companion has seen in this process: a new one raises it. */
        count: z.int().check(z.positive()),
        at: z.string(),
        device: z.int(),
        requestedBytes: bytes,
        /** What PyTorch passes the observer as the device's limit: its total memory, or the cap
         * set_per_process_memory_fraction() set. */
        deviceTotalBytes: bytes,
        deviceFreeBytes: bytes,
        /** A memory snapshot the companion dumped at that moment (GPU_LAYERS_OOM_SNAPSHOT=1). */
        snapshot: z.nullable(z.string()),
        snapshotError: z.nullable(z.string()),
      }),
    ),
  ),
  source: z.object({
    file: z.string(),
    writtenAt: z.string(),
    ageSeconds: z.number(),
    torchVersion: z.nullable(z.string()),
  }),
});

const count = z.nullable(z.number().check(z.nonnegative()));

/** vLLM's counters as it reported them: cumulative since its start (they reset when it restarts). */
export const vllmCountersSchema = z.object({
  promptTokens: count,
  generationTokens: count,
  /** Finished requests, every finished_reason together. */
  requestsFinished: count,
  preemptions: count,
  prefixCacheQueries: count,
  prefixCacheHits: count,
});

export const REQUEST_PHASES = ['prefill-heavy', 'decode', 'idle'] as const;

/** The load on the engine at one sample, from its counters between samples (or its stats log line). */
export const requestLoadSchema = z.object({
  source: z.enum(['metrics', 'log']),
  promptTokensPerSecond: count,
  generationTokensPerSecond: count,
  /** null from the log, which has no such figure. */
  requestsFinishedPerSecond: count,
  /** prefill-heavy: more prompt tokens than generated ones; decode: generating; idle: no token and
   * no request in flight. */
  phase: z.nullable(z.enum(REQUEST_PHASES)),
  sinceLastPrefillSeconds: count,
  /** Prompt tokens of the last run of samples with prefills. */
  lastPrefillBurstTokens: count,
  /** How long nothing moved just before that burst began (idle, then a burst of prefills). */
  idleBeforeLastBurstSeconds: count,
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
  /** Of kvCacheBytes, what holds sequences now: kvCacheBytes x kvCacheUsage. */
  kvCacheInUseBytes: added(bytes),
  /** vLLM's cumulative counters for this engine (null where /metrics was not read). */
  counters: added(z.nullable(vllmCountersSchema)),
  /** The request load at this sample: rates, phase, the last prefill. */
  load: added(z.nullable(requestLoadSchema)),
  /** The KV cache's blocks against PyTorch's allocator (layers/kv-block-alignment.ts), where the
   * model config (--hf-config), the block size and num_gpu_blocks are known. */
  kvBlockAlignment: added(
    z.nullable(
      z.object({
        blockBytesPerLayer: z.int().check(z.nonnegative()),
        /** What rounding each layer's KV tensor to the allocator's 2 MiB costs, for the whole pool. */
        poolLostBytes: bytes,
        poolLostShare: z.nullable(z.number()),
        /** A block size whose blocks leave no remainder in the allocator's segments (null: aligned, or none does). */
        alignedBlockSize: z.nullable(z.int()),
        worthFixing: z.boolean(),
        advice: z.nullable(z.string()),
      }),
    ),
  ),
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

/**
 * The Kubernetes container a GPU process runs in, by the names a person queries, from the
 * kubelet's device assignments (its pod-resources API) and the process's cgroup pod UID
 * (layers/kubernetes-identity.ts).
 */
export const kubernetesIdentitySchema = z.object({
  namespace: z.string(),
  pod: z.string(),
  container: z.string(),
  /** The device ids the kubelet assigned that container on this process's GPU ("GPU-<uuid>",
   * "MIG-<uuid>", "GPU-<uuid>::3" for a time-sliced or MPS replica). */
  deviceIds: z.array(z.string()),
  /** sole-assignee: the GPU is assigned to that container alone; pod-uid: several containers
   * share it, and the process's cgroup pod UID, learned for a pod on a GPU of its own, tells
   * which. */
  matchedBy: z.enum(['sole-assignee', 'pod-uid']),
});

const layeredFields = {
  layers: layersSchema,
  gaps: gapsSchema,
  host: z.nullable(hostLayerSchema),
  /** Its pod and container; null with the reason under errors.kubernetes where pod-resources was
   * read, and null alone where it was not (sources.podResources says why). */
  kubernetes: added(z.nullable(kubernetesIdentitySchema)),
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

/**
 * A GPU process of the monitor's previous sample that is gone (not merely off the GPU: /proc no
 * longer shows it), with its cgroup's OOM-kill count before and after: a rise means the kernel's
 * OOM killer ended it (exit 137).
 */
export const processExitSchema = z.object({
  pid: z.int().check(z.positive()),
  deviceIndex: z.int().check(z.nonnegative()),
  uuid: z.nullable(z.string()),
  startTimeTicks: z.nullable(z.int()),
  /** The sample it was last in. */
  lastSeenAt: z.string(),
  cgroupPath: z.nullable(z.string()),
  /** memory.events oom_kill at its last sample, and now. */
  oomKillsBefore: z.nullable(z.int().check(z.nonnegative())),
  oomKillsAfter: z.nullable(z.int().check(z.nonnegative())),
  /** The cgroup read now: its own, or the nearest ancestor left when the container's is gone
   * (v2 counts kills in the cgroups below it too). */
  oomKillsReadFrom: z.nullable(z.string()),
  errors,
});

export const layeredSampleSchema = z.extend(sampleSchema, {
  devices: z.array(layeredDeviceSchema),
  /** GPU processes gone since the monitor's previous sample; null where not tracked (a one-shot
   * probe, the first sample, a recording made before this field). */
  exits: added(z.nullable(z.array(processExitSchema))),
  /** Each outside source, read or not, and why not. */
  sources: z.object({
    companion: sourceStatus,
    vllmMetrics: z.array(sourceStatus),
    vllmLog: z.nullable(sourceStatus),
    hfConfig: z.nullable(sourceStatus),
    calibration: sourceStatus,
    /** The kubelet's pod-resources socket (the processes' Kubernetes identity); null in a
     * recording made before it. */
    podResources: added(z.nullable(sourceStatus)),
  }),
});

export interface HostLayer extends z.infer<typeof hostLayerSchema> {}
export type MallocLayer = z.infer<typeof mallocLayerSchema>;
export type PythonLayer = z.infer<typeof pythonLayerSchema>;
export interface ContainerMemory extends z.infer<typeof containerMemorySchema> {}
export type VllmCountersLayer = z.infer<typeof vllmCountersSchema>;
export type RequestLoad = z.infer<typeof requestLoadSchema>;
export type RequestPhase = (typeof REQUEST_PHASES)[number];
export interface AllocatorLayer extends z.infer<typeof allocatorLayerSchema> {}
export interface FrameworkLayer extends z.infer<typeof frameworkLayerSchema> {}
export interface Layers extends z.infer<typeof layersSchema> {}
export interface Gaps extends z.infer<typeof gapsSchema> {}
export interface LayeredProcess extends z.infer<typeof layeredProcessSchema> {}
export interface LayeredMigDevice extends z.infer<typeof layeredMigDeviceSchema> {}
export interface LayeredDevice extends z.infer<typeof layeredDeviceSchema> {}
export interface LayeredSample extends z.infer<typeof layeredSampleSchema> {}
export type SourceStatus = z.infer<typeof sourceStatus>;
export type ProcessExit = z.infer<typeof processExitSchema>;
export interface KubernetesIdentity extends z.infer<typeof kubernetesIdentitySchema> {}
