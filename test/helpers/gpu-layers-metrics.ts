/**
 * The exporter's metric families as `gpu-layers serve` publishes them: each family's own labels
 * and, for the labels with a fixed set of values, those values. The deploy tests check every
 * query in the rules and the dashboard against this list.
 */
/**
 * container_id and pod_uid (from the cgroup path) and namespace, pod and container (Kubernetes'
 * names, from the kubelet) are set where the exporter can read them; command only with serve
 * --command-label.
 */
const PROCESS = ['gpu', 'uuid', 'pid', 'command', 'container_id', 'pod_uid', 'namespace', 'pod', 'container'] as const;
/** A cgroup that holds GPU processes: its path and the identity of its container. */
const CGROUP = ['cgroup', 'container_id', 'pod_uid', 'namespace', 'pod', 'container'] as const;
/** The sequence-consistency canary's subject: the API base it calls (no credentials) and the model. */
const CANARY = ['endpoint', 'model'] as const;

export interface MetricFamily {
  labels: readonly string[];
  values?: Readonly<Record<string, readonly string[]>>;
}

export const METRICS: Readonly<Record<string, MetricFamily>> = {
  /** used, free and reserved add up to the total (reserved absent with NVML's v1 call, whose used includes it). */
  gpu_layers_device_memory_bytes: { labels: ['gpu', 'uuid', 'state'], values: { state: ['used', 'free', 'reserved'] } },
  gpu_layers_device_memory_total_bytes: { labels: ['gpu', 'uuid'] },
  gpu_layers_device_unattributed_bytes: { labels: ['gpu', 'uuid'] },
  /** 0 for a GPU NVML cannot open or read, or no longer lists (every GPU seen since the start). */
  gpu_layers_device_up: { labels: ['gpu', 'uuid'] },
  /** 1 for each GPU that is down; code is NVML's return code name (or NOT_LISTED), reason its message. */
  gpu_layers_device_error_info: { labels: ['gpu', 'uuid', 'code', 'reason'] },
  gpu_layers_process_driver_memory_bytes: { labels: PROCESS },
  gpu_layers_process_context_bytes: { labels: PROCESS },
  gpu_layers_process_allocator_reserved_bytes: { labels: PROCESS },
  gpu_layers_process_allocator_allocated_bytes: { labels: PROCESS },
  /** Parts of the allocated bytes that do not overlap. */
  gpu_layers_process_framework_memory_bytes: { labels: [...PROCESS, 'kind'], values: { kind: ['weights', 'kv_cache'] } },
  gpu_layers_process_outside_allocator_bytes: { labels: PROCESS },
  gpu_layers_process_cuda_graphs_estimate_bytes: { labels: PROCESS },
  gpu_layers_process_allocator_cached_bytes: { labels: PROCESS },
  gpu_layers_process_fragmentation_ratio: { labels: PROCESS },
  /** The parts of RSS: they add up to gpu_layers_process_host_rss_bytes. */
  gpu_layers_process_host_memory_bytes: { labels: [...PROCESS, 'kind'], values: { kind: ['anon', 'file', 'shmem'] } },
  gpu_layers_process_host_rss_bytes: { labels: PROCESS },
  gpu_layers_process_host_driver_mapped_bytes: { labels: PROCESS },
  gpu_layers_process_host_heap_bytes: { labels: PROCESS },
  gpu_layers_process_host_anon_mappings_bytes: { labels: PROCESS },
  gpu_layers_process_host_outside_malloc_bytes: { labels: PROCESS },
  gpu_layers_process_requests: { labels: [...PROCESS, 'state'], values: { state: ['running', 'waiting'] } },
  gpu_layers_process_kv_cache_usage_ratio: { labels: PROCESS },
  gpu_layers_process_kv_cache_in_use_bytes: { labels: PROCESS },
  gpu_layers_process_requests_finished_total: { labels: PROCESS },
  gpu_layers_process_tokens_total: { labels: [...PROCESS, 'kind'], values: { kind: ['prompt', 'generation'] } },
  gpu_layers_process_request_phase: { labels: [...PROCESS, 'phase'], values: { phase: ['prefill-heavy', 'decode', 'idle'] } },
  gpu_layers_process_seconds_since_last_prefill: { labels: PROCESS },
  gpu_layers_process_malloc_bytes: { labels: [...PROCESS, 'state'], values: { state: ['in_use', 'free'] } },
  gpu_layers_container_memory_usage_bytes: { labels: CGROUP },
  gpu_layers_container_memory_working_set_bytes: { labels: CGROUP },
  gpu_layers_container_memory_limit_bytes: { labels: CGROUP },
  gpu_layers_container_oom_kills_total: { labels: CGROUP },
  /** One per flight recording written for an out-of-memory event (none with --no-flights). */
  gpu_layers_oom_events_total: { labels: ['gpu', 'uuid', 'kind'], values: { kind: ['oom-kill', 'cuda-oom'] } },
  gpu_layers_host_memory_total_bytes: { labels: [] },
  gpu_layers_host_memory_available_bytes: { labels: [] },
  gpu_layers_finding: {
    labels: ['pattern', 'severity', ...PROCESS],
    values: {
      pattern: ['cuda-graph-creep', 'allocator-fragmentation', 'host-heap-leak', 'rss-not-malloc', 'lazy-init', 'idle-growth'],
      severity: ['info', 'warning', 'critical'],
    },
  },
  // The canary's (serve --canary-openai URL --canary-model NAME; absent unless asked for).
  gpu_layers_canary_success: { labels: CANARY },
  gpu_layers_canary_last_run_timestamp_seconds: { labels: CANARY },
  gpu_layers_canary_divergences: { labels: [...CANARY, 'kind'], values: { kind: ['noise', 'mismatch'] } },
  gpu_layers_canary_finding: { labels: [...CANARY, 'severity'], values: { severity: ['warning', 'critical'] } },
  gpu_layers_canary_requests_total: { labels: CANARY },
  /** Always 1; driver, nvml and cuda are empty until a collection has read them. */
  gpu_layers_build_info: { labels: ['version', 'driver', 'nvml', 'cuda'] },
  gpu_layers_collect_success: { labels: [] },
  gpu_layers_collect_duration_seconds: { labels: [] },
  gpu_layers_last_collect_timestamp_seconds: { labels: [] },
};

/** The labels Prometheus adds to every scraped series. */
export const TARGET_LABELS = ['instance', 'job'] as const;

/** Every label any family carries, target labels included. */
export const ALL_LABELS: ReadonlySet<string> = new Set([...TARGET_LABELS, ...Object.values(METRICS).flatMap((m) => m.labels)]);
