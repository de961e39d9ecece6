/**
 * The exporter's metric families (prom-client) and how one collection fills them: every family
 * is reset and refilled from the newest layered sample, so the series of an exited process
 * disappear with it. Bytes are integers, unknown values are absent (never 0), units are in the
 * names, and every family has HELP text.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { collectDefaultMetrics, Counter, Gauge, Registry } from 'prom-client';

import type { Finding } from '../diagnosis/finding-schema.js';
import { processesOf } from '../layers/device-processes.js';
import { packageRoot } from '../package-root.js';
import { REQUEST_PHASES, type ContainerMemory, type LayeredProcess, type LayeredSample } from '../layers/schema.js';
import { deviceHealth, type DeviceHealth } from './device-health.js';

/**
 * A GPU process's labels. `container` is the Kubernetes container's name (with `namespace` and
 * `pod`, the labels kube-state-metrics and cAdvisor use, so joins need no relabelling); the
 * container runtime's id is `container_id`, and `pod_uid` the pod's UID from the cgroup path.
 */
const PROCESS_LABELS = ['gpu', 'uuid', 'pid', 'command', 'container_id', 'pod_uid', 'namespace', 'pod', 'container'] as const;
/** A cgroup's labels: its path, and the identity of the container it is (empty outside one). */
const CGROUP_LABELS = ['cgroup', 'container_id', 'pod_uid', 'namespace', 'pod', 'container'] as const;
/** Command lines are cut to this many characters: a label, not a log line. */
const COMMAND_LABEL_CHARS = 80;

type ProcessLabel = (typeof PROCESS_LABELS)[number];
type CgroupLabel = (typeof CGROUP_LABELS)[number];

/** The prefix of the exporter's own process metrics (prom-client's default metrics), when on. */
export const PROCESS_METRICS_PREFIX = 'gpu_layers_exporter_';

export interface ExporterMetricsOptions {
  /** The gpu-layers version in gpu_layers_build_info (default: the package's). */
  version?: string;
  /** prom-client's default metrics of this process (CPU, memory, event loop, GC), prefixed gpu_layers_exporter_ (default off). */
  processMetrics?: boolean;
  /** The `command` label (the process's command line, cut to 80 characters) on every process series (default off). */
  commandLabel?: boolean;
}

export interface ExporterMetrics {
  registry: Registry;
  /** The gpu-layers version gpu_layers_build_info carries. */
  version: string;
  /** Whether process series carry the `command` label. */
  commandLabel: boolean;
  buildInfo: Gauge<'version' | 'driver' | 'nvml' | 'cuda'>;
  deviceMemory: Gauge<'gpu' | 'uuid' | 'state'>;
  deviceMemoryTotal: Gauge<'gpu' | 'uuid'>;
  deviceUnattributed: Gauge<'gpu' | 'uuid'>;
  deviceUp: Gauge<'gpu' | 'uuid'>;
  deviceErrorInfo: Gauge<'gpu' | 'uuid' | 'code' | 'reason'>;
  processDriverMemory: Gauge<ProcessLabel>;
  processContext: Gauge<ProcessLabel>;
  processAllocatorReserved: Gauge<ProcessLabel>;
  processAllocatorAllocated: Gauge<ProcessLabel>;
  processFrameworkMemory: Gauge<ProcessLabel | 'kind'>;
  processOutsideAllocator: Gauge<ProcessLabel>;
  processCudaGraphsEstimate: Gauge<ProcessLabel>;
  processAllocatorCached: Gauge<ProcessLabel>;
  processFragmentation: Gauge<ProcessLabel>;
  processHostMemory: Gauge<ProcessLabel | 'kind'>;
  processHostRss: Gauge<ProcessLabel>;
  processHostDriverMapped: Gauge<ProcessLabel>;
  processHostHeap: Gauge<ProcessLabel>;
  processHostAnonMappings: Gauge<ProcessLabel>;
  processHostOutsideMalloc: Gauge<ProcessLabel>;
  processRequests: Gauge<ProcessLabel | 'state'>;
  processKvCacheUsage: Gauge<ProcessLabel>;
  processKvCacheInUse: Gauge<ProcessLabel>;
  processRequestsFinished: Counter<ProcessLabel>;
  processTokens: Counter<ProcessLabel | 'kind'>;
  processRequestPhase: Gauge<ProcessLabel | 'phase'>;
  processSinceLastPrefill: Gauge<ProcessLabel>;
  processMalloc: Gauge<ProcessLabel | 'state'>;
  containerMemoryUsage: Gauge<CgroupLabel>;
  containerMemoryWorkingSet: Gauge<CgroupLabel>;
  containerMemoryLimit: Gauge<CgroupLabel>;
  containerOomKills: Counter<CgroupLabel>;
  /** Counted by the collector as events come (never reset by a collection). */
  oomEvents: Counter<'gpu' | 'uuid' | 'kind'>;
  /** The canary's, set by its schedule (canary-schedule.ts), never by a collection. */
  canarySuccess: Gauge<'endpoint' | 'model'>;
  canaryLastRun: Gauge<'endpoint' | 'model'>;
  canaryDivergences: Gauge<'endpoint' | 'model' | 'kind'>;
  canaryFinding: Gauge<'endpoint' | 'model' | 'severity'>;
  canaryRequests: Counter<'endpoint' | 'model'>;
  hostMemoryTotal: Gauge;
  hostMemoryAvailable: Gauge;
  finding: Gauge<ProcessLabel | 'pattern' | 'severity'>;
  collectSuccess: Gauge;
  collectDuration: Gauge;
  lastCollect: Gauge;
}

/** The package version from its package.json ('unknown' where it cannot be read). */
export function gpuLayersVersion(): string {
  try {
    return (JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function createExporterMetrics(options: ExporterMetricsOptions = {}): ExporterMetrics {
  const registry = new Registry();
  const version = options.version ?? gpuLayersVersion();
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[] = []): Gauge<L> => new Gauge({ name, help, labelNames, registers: [registry] });
  // A counter that mirrors one read elsewhere (vLLM's, the kernel's): set by reset() and inc() at
  // each collection. It resets when its source restarts, which rate() takes as a counter reset.
  const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> => new Counter({ name, help, labelNames, registers: [registry] });
  const buildInfo = gauge('gpu_layers_build_info', "Always 1: the gpu-layers version, and the NVIDIA driver, NVML and the CUDA version the driver supports as the last successful collection read them (empty until one has).", ['version', 'driver', 'nvml', 'cuda'] as const);
  buildInfo.set({ version, driver: '', nvml: '', cuda: '' }, 1);
  if (options.processMetrics === true) collectDefaultMetrics({ register: registry, prefix: PROCESS_METRICS_PREFIX });
  return {
    registry,
    version,
    commandLabel: options.commandLabel === true,
    buildInfo,
    deviceMemory: gauge('gpu_layers_device_memory_bytes', "Device memory by state, as NVML reports it: used, free and reserved add up to gpu_layers_device_memory_total_bytes (reserved is absent with NVML's v1 call, whose used includes it).", ['gpu', 'uuid', 'state']),
    deviceMemoryTotal: gauge('gpu_layers_device_memory_total_bytes', "The device's memory, as NVML reports it.", ['gpu', 'uuid']),
    deviceUnattributed: gauge('gpu_layers_device_unattributed_bytes', 'Device used memory that no listed process accounts for (negative when the inputs disagree).', ['gpu', 'uuid']),
    deviceUp: gauge('gpu_layers_device_up', "1 if the last successful collection read this GPU, 0 if NVML could not open it (GPU_IS_LOST, ...), could not read its memory, or no longer lists it (every GPU seen since the exporter started is kept; gpu_layers_device_error_info says why).", ['gpu', 'uuid']),
    deviceErrorInfo: gauge('gpu_layers_device_error_info', "1 for each GPU that is down (gpu_layers_device_up 0), with why: code (NVML's return code name, e.g. NVML_ERROR_GPU_IS_LOST, or NOT_LISTED) and reason (its message).", ['gpu', 'uuid', 'code', 'reason']),
    processDriverMemory: gauge('gpu_layers_process_driver_memory_bytes', "Device memory NVML charges to a GPU process (its used GPU memory): everything it holds on the device. The other gpu_layers_process_*_bytes device families are parts of it.", PROCESS_LABELS),
    processContext: gauge('gpu_layers_process_context_bytes', "Of the driver figure, what a bare CUDA context takes on this device and driver (gpu-layers calibrate): the same for each process on a device.", PROCESS_LABELS),
    processAllocatorReserved: gauge('gpu_layers_process_allocator_reserved_bytes', "Of the driver figure, what PyTorch's caching allocator has reserved from the driver (torch.cuda.memory_reserved).", PROCESS_LABELS),
    processAllocatorAllocated: gauge('gpu_layers_process_allocator_allocated_bytes', "Of the allocator's reserved bytes, what live tensors use (torch.cuda.memory_allocated).", PROCESS_LABELS),
    processFrameworkMemory: gauge('gpu_layers_process_framework_memory_bytes', "Of the allocated bytes, what vLLM says it holds, by kind: weights (the model) and kv_cache (the KV cache it preallocated). The kinds do not overlap: their sum is what the framework accounts for.", [...PROCESS_LABELS, 'kind']),
    processOutsideAllocator: gauge('gpu_layers_process_outside_allocator_bytes', "The driver figure less the allocator's reserved bytes: device memory the process holds that PyTorch does not see (the context, CUDA graphs, NCCL, other libraries); negative when the inputs disagree.", PROCESS_LABELS),
    processCudaGraphsEstimate: gauge('gpu_layers_process_cuda_graphs_estimate_bytes', "An estimate of a process's CUDA graph memory: the allocator's private pools plus what is outside the allocator beyond the context. It overlaps both gpu_layers_process_allocator_reserved_bytes and gpu_layers_process_outside_allocator_bytes.", PROCESS_LABELS),
    processAllocatorCached: gauge('gpu_layers_process_allocator_cached_bytes', "Of the allocator's reserved bytes, free blocks it keeps cached outside private pools (reserved - allocated - the pools' free part); negative when the inputs disagree.", PROCESS_LABELS),
    processFragmentation: gauge('gpu_layers_process_fragmentation_ratio', "Free memory trapped in split blocks, as a share of the allocator's reserved memory (0..1).", [...PROCESS_LABELS]),
    processHostMemory: gauge('gpu_layers_process_host_memory_bytes', "A GPU process's resident host memory by kind: anon, file and shmem, which add up to gpu_layers_process_host_rss_bytes.", [...PROCESS_LABELS, 'kind']),
    processHostRss: gauge('gpu_layers_process_host_rss_bytes', "A GPU process's resident host memory (RSS).", [...PROCESS_LABELS]),
    processHostDriverMapped: gauge('gpu_layers_process_host_driver_mapped_bytes', "Of a GPU process's RSS, what is resident in mappings of /dev/nvidia* (pinned host memory, UVM, driver buffers).", [...PROCESS_LABELS]),
    processHostHeap: gauge('gpu_layers_process_host_heap_bytes', "Of a GPU process's anonymous RSS, what is in the brk heap (malloc's main arena).", [...PROCESS_LABELS]),
    processHostAnonMappings: gauge('gpu_layers_process_host_anon_mappings_bytes', "Of a GPU process's anonymous RSS, what is in anonymous mappings outside the heap and the stack (malloc's thread arenas and mmapped chunks, and other mmaps).", [...PROCESS_LABELS]),
    processHostOutsideMalloc: gauge('gpu_layers_process_host_outside_malloc_bytes', "A GPU process's anonymous RSS less glibc malloc's footprint: anonymous memory malloc does not hold (negative where malloc holds pages that are not resident).", [...PROCESS_LABELS]),
    processRequests: gauge('gpu_layers_process_requests', "Requests of the vLLM server a GPU process belongs to, by state (running, waiting).", [...PROCESS_LABELS, 'state']),
    processKvCacheUsage: gauge('gpu_layers_process_kv_cache_usage_ratio', "Occupancy of the KV cache of the vLLM engine a GPU process serves, 0..1 (vllm:kv_cache_usage_perc).", [...PROCESS_LABELS]),
    processKvCacheInUse: gauge('gpu_layers_process_kv_cache_in_use_bytes', "This process's KV cache bytes holding sequences now: its KV cache x the engine's usage.", [...PROCESS_LABELS]),
    processRequestsFinished: counter('gpu_layers_process_requests_finished_total', "Requests the vLLM engine a GPU process serves has finished (vllm:request_success_total, every reason), mirrored; resets when vLLM restarts.", [...PROCESS_LABELS]),
    processTokens: counter('gpu_layers_process_tokens_total', 'Tokens that engine processed, by kind (prompt: prefill, generation: decode), mirrored from vLLM; resets when vLLM restarts.', [...PROCESS_LABELS, 'kind']),
    processRequestPhase: gauge('gpu_layers_process_request_phase', "1 for the engine's phase at the last sample (prefill-heavy, decode, idle), 0 for the others.", [...PROCESS_LABELS, 'phase']),
    processSinceLastPrefill: gauge('gpu_layers_process_seconds_since_last_prefill', 'Seconds since that engine last processed prompt tokens (a prefill).', [...PROCESS_LABELS]),
    processMalloc: gauge('gpu_layers_process_malloc_bytes', "glibc malloc inside a GPU process (read by the companion): in_use, and free kept in its arenas (the two add up to malloc's footprint).", [...PROCESS_LABELS, 'state']),
    containerMemoryUsage: gauge('gpu_layers_container_memory_usage_bytes', "The memory usage of a cgroup that holds a GPU process (memory.current, or memory.usage_in_bytes on cgroup v1), one series per cgroup however many GPU processes it holds.", CGROUP_LABELS),
    containerMemoryWorkingSet: gauge('gpu_layers_container_memory_working_set_bytes', "Of that usage, the working set: usage - inactive file, what the kubelet evicts on (cAdvisor's container_memory_working_set_bytes).", CGROUP_LABELS),
    containerMemoryLimit: gauge('gpu_layers_container_memory_limit_bytes', "That cgroup's own memory limit (absent when it has none; a parent cgroup's may be lower).", CGROUP_LABELS),
    containerOomKills: counter('gpu_layers_container_oom_kills_total', "Processes the OOM killer killed in a cgroup that holds a GPU process (memory.events oom_kill), mirrored.", CGROUP_LABELS),
    oomEvents: counter('gpu_layers_oom_events_total', "Out-of-memory events seen between two collections: kind=oom-kill (a GPU process the kernel's OOM killer ended), cuda-oom (a CUDA out-of-memory in a process's PyTorch allocator). Each writes a flight recording.", ['gpu', 'uuid', 'kind']),
    canarySuccess: gauge('gpu_layers_canary_success', "1 when the last run of the sequence-consistency canary (serve --canary-openai) completed, 0 when it failed.", ['endpoint', 'model']),
    canaryLastRun: gauge('gpu_layers_canary_last_run_timestamp_seconds', "When the canary's last run ended (Unix time).", ['endpoint', 'model']),
    canaryDivergences: gauge('gpu_layers_canary_divergences', "Divergences under batching in the canary's last completed run: noise (a near-tie flipped by the batch shape) or mismatch (the reference token led by a wide margin).", ['endpoint', 'model', 'kind']),
    canaryFinding: gauge('gpu_layers_canary_finding', "1 while the canary's last completed run found a scheduler-state mismatch, by the finding's severity.", ['endpoint', 'model', 'severity']),
    canaryRequests: counter('gpu_layers_canary_requests_total', 'Requests the canary sent to the server.', ['endpoint', 'model']),
    hostMemoryTotal: gauge('gpu_layers_host_memory_total_bytes', "The host's memory (MemTotal in /proc/meminfo)."),
    hostMemoryAvailable: gauge('gpu_layers_host_memory_available_bytes', "Of the host's memory, what is available for new allocations without swapping (MemAvailable)."),
    finding: gauge('gpu_layers_finding', "1 while the exporter's diagnosis over its recent samples names a pattern for a process.", ['pattern', 'severity', ...PROCESS_LABELS]),
    collectSuccess: gauge('gpu_layers_collect_success', "1 if the last collection completed: NVML answered within the deadline (a GPU that failed in it is gpu_layers_device_up 0, not a failed collection). 0 if it failed as a whole (NVML wedged past the deadline, the probe unusable, /proc unreadable); every other series is then the last successful collection's, gpu_layers_device_up included."),
    collectDuration: gauge('gpu_layers_collect_duration_seconds', 'How long the last collection took.'),
    lastCollect: gauge('gpu_layers_last_collect_timestamp_seconds', 'When the last successful collection was taken (Unix time).'),
  };
}

type ProcessLabels = Record<ProcessLabel, string>;

/** A process's labels; without `commandLabel`, no `command` (prom-client leaves a label not given out). */
function processLabels(device: { index: number; uuid: string | null }, p: LayeredProcess, commandLabel: boolean): ProcessLabels {
  const labels = {
    gpu: String(device.index),
    uuid: device.uuid ?? '',
    pid: String(p.pid),
    container_id: p.host?.containerId?.slice(0, 12) ?? '',
    pod_uid: p.host?.podUid ?? '',
    ...kubernetesLabels(p),
  };
  if (!commandLabel) return labels as ProcessLabels;
  const command = (p.command ?? '').replace(/\s+/g, ' ').trim();
  return { ...labels, command: command.length > COMMAND_LABEL_CHARS ? `${command.slice(0, COMMAND_LABEL_CHARS - 1)}…` : command };
}

/** The Kubernetes identity of a process (from the kubelet's pod-resources API): empty where unknown. */
function kubernetesLabels(p: LayeredProcess): Record<'namespace' | 'pod' | 'container', string> {
  const k = p.kubernetes;
  return k === null ? { namespace: '', pod: '', container: '' } : { namespace: k.namespace, pod: k.pod, container: k.container };
}

/** A cgroup's labels: the path, and the container identity of a process in it. */
function cgroupLabels(path: string, process: ProcessLabels): Record<CgroupLabel, string> {
  return { cgroup: path, container_id: process.container_id, pod_uid: process.pod_uid, namespace: process.namespace, pod: process.pod, container: process.container };
}

function set<L extends string>(gauge: Gauge<L>, labels: Record<L, string>, value: number | null | undefined): void {
  if (value !== null && value !== undefined && Number.isFinite(value)) gauge.set(labels, value);
}

function mirror<L extends string>(counter: Counter<L>, labels: Record<L, string>, value: number | null | undefined): void {
  if (value !== null && value !== undefined && Number.isFinite(value) && value >= 0) counter.inc(labels, value);
}

/** Refills every sample-derived family from `sample` (and `findings`, from the diagnosis). */
export function fillSampleMetrics(
  metrics: ExporterMetrics,
  sample: LayeredSample,
  findings: readonly Finding[],
  hostMemory: { total: number | null; available: number | null },
  /** Each device's health (the collector's, which remembers devices no longer listed); by default, of this sample alone. */
  health: readonly DeviceHealth[] = deviceHealth(sample, new Map()),
): void {
  const m = metrics;
  for (const g of [
    m.deviceMemory,
    m.deviceMemoryTotal,
    m.deviceUnattributed,
    m.deviceUp,
    m.deviceErrorInfo,
    m.processDriverMemory,
    m.processContext,
    m.processAllocatorReserved,
    m.processAllocatorAllocated,
    m.processFrameworkMemory,
    m.processOutsideAllocator,
    m.processCudaGraphsEstimate,
    m.processAllocatorCached,
    m.processFragmentation,
    m.processHostMemory,
    m.processHostRss,
    m.processHostDriverMapped,
    m.processHostHeap,
    m.processHostAnonMappings,
    m.processHostOutsideMalloc,
    m.processRequests,
    m.processKvCacheUsage,
    m.processKvCacheInUse,
    m.processRequestsFinished,
    m.processTokens,
    m.processRequestPhase,
    m.processSinceLastPrefill,
    m.processMalloc,
    m.containerMemoryUsage,
    m.containerMemoryWorkingSet,
    m.containerMemoryLimit,
    m.containerOomKills,
    m.hostMemoryTotal,
    m.hostMemoryAvailable,
    m.finding,
  ]) {
    g.reset();
  }
  const { driver } = sample;
  const cuda = driver.cudaDriverVersion === null ? '' : `${Math.floor(driver.cudaDriverVersion / 1000)}.${Math.floor((driver.cudaDriverVersion % 1000) / 10)}`;
  m.buildInfo.reset();
  m.buildInfo.set({ version: m.version, driver: driver.version ?? '', nvml: driver.nvmlVersion ?? '', cuda }, 1);
  set(m.hostMemoryTotal, {}, hostMemory.total);
  set(m.hostMemoryAvailable, {}, hostMemory.available);
  for (const h of health) {
    m.deviceUp.set({ gpu: h.gpu, uuid: h.uuid }, h.up ? 1 : 0);
    if (h.error !== null) m.deviceErrorInfo.set({ gpu: h.gpu, uuid: h.uuid, code: h.error.code, reason: h.error.reason }, 1);
  }
  const labelsByProcess = new Map<string, ProcessLabels>();
  // A cgroup is filled once, however many GPU processes (tensor-parallel workers, several GPUs)
  // it holds: a sum over its series is then the memory of distinct cgroups.
  const cgroups = new Map<string, { container: ContainerMemory; labels: Record<CgroupLabel, string> }>();
  for (const device of sample.devices) {
    const d = { gpu: String(device.index), uuid: device.uuid ?? '' };
    const mem = device.memory;
    set(m.deviceMemoryTotal, d, mem.totalBytes);
    set(m.deviceMemory, { ...d, state: 'used' }, mem.usedBytes);
    set(m.deviceMemory, { ...d, state: 'free' }, mem.freeBytes);
    set(m.deviceMemory, { ...d, state: 'reserved' }, mem.reservedBytes);
    set(m.deviceUnattributed, d, device.unattributedBytes);
    for (const p of processesOf(device)) {
      const labels = processLabels(device, p, m.commandLabel);
      labelsByProcess.set(`${device.index}/${p.pid}`, labels);
      const { layers, gaps, host } = p;
      set(m.processDriverMemory, labels, layers.driverBytes);
      set(m.processContext, labels, layers.contextBytes);
      set(m.processAllocatorReserved, labels, layers.allocator?.reservedBytes);
      set(m.processAllocatorAllocated, labels, layers.allocator?.allocatedBytes);
      set(m.processFrameworkMemory, { ...labels, kind: 'weights' }, layers.framework?.weightsBytes);
      set(m.processFrameworkMemory, { ...labels, kind: 'kv_cache' }, layers.framework?.kvCacheBytes);
      set(m.processOutsideAllocator, labels, gaps.outsideAllocatorBytes);
      set(m.processCudaGraphsEstimate, labels, gaps.cudaGraphs.totalEstimateBytes);
      set(m.processAllocatorCached, labels, gaps.allocatorCachedBytes);
      set(m.processFragmentation, labels, gaps.fragmentationRatio);
      set(m.processHostRss, labels, host?.rssBytes);
      set(m.processHostMemory, { ...labels, kind: 'anon' }, host?.anonBytes);
      set(m.processHostMemory, { ...labels, kind: 'file' }, host?.fileBytes);
      set(m.processHostMemory, { ...labels, kind: 'shmem' }, host?.shmemBytes);
      set(m.processHostDriverMapped, labels, host?.driverMappedBytes);
      set(m.processRequests, { ...labels, state: 'running' }, layers.framework?.requestsRunning);
      set(m.processRequests, { ...labels, state: 'waiting' }, layers.framework?.requestsWaiting);
      set(m.processHostHeap, labels, host?.heapBytes);
      set(m.processHostAnonMappings, labels, host?.anonMappingsBytes);
      set(m.processHostOutsideMalloc, labels, host?.outsideMallocBytes);
      set(m.processMalloc, { ...labels, state: 'in_use' }, host?.malloc?.inUseBytes);
      set(m.processMalloc, { ...labels, state: 'free' }, host?.malloc?.freeBytes);
      const container = host?.container ?? null;
      if (container !== null) cgroups.set(container.path, { container, labels: cgroupLabels(container.path, labels) });
      const framework = layers.framework;
      set(m.processKvCacheUsage, labels, framework?.kvCacheUsage);
      set(m.processKvCacheInUse, labels, framework?.kvCacheInUseBytes);
      mirror(m.processRequestsFinished, labels, framework?.counters?.requestsFinished);
      mirror(m.processTokens, { ...labels, kind: 'prompt' }, framework?.counters?.promptTokens);
      mirror(m.processTokens, { ...labels, kind: 'generation' }, framework?.counters?.generationTokens);
      const phase = framework?.load?.phase;
      if (phase !== null && phase !== undefined) for (const p of REQUEST_PHASES) m.processRequestPhase.set({ ...labels, phase: p }, p === phase ? 1 : 0);
      set(m.processSinceLastPrefill, labels, framework?.load?.sinceLastPrefillSeconds);
    }
  }
  for (const { container, labels } of cgroups.values()) {
    set(m.containerMemoryUsage, labels, container.usageBytes);
    set(m.containerMemoryWorkingSet, labels, container.workingSetBytes);
    set(m.containerMemoryLimit, labels, container.limitBytes);
    mirror(m.containerOomKills, labels, container.oomKills);
  }
  for (const f of findings) {
    // Only findings about a process still on the device: the others describe the past.
    const labels = f.subject.pid === null ? null : labelsByProcess.get(`${f.subject.deviceIndex}/${f.subject.pid}`);
    if (labels === null || labels === undefined) continue;
    m.finding.set({ pattern: f.id, severity: f.severity, ...labels }, 1);
  }
}
