/**
 * `gpu-layers doctor`'s verdicts: from what was found on this host (the addon, NVML, the device
 * files, the PID namespace, the calibration, the companion files, the vLLM endpoints, the KV
 * cache's fit on the allocator), one check per piece with what is wrong and the fix. Pure over gathered facts, so every verdict is
 * tested without the host it describes.
 */
import type { GpuLayersError } from '../errors.js';
import { formatBytes } from '../format-bytes.js';
import { kvBlockAlignment, WORTH_FIXING_BYTES, WORTH_FIXING_FRACTION } from '../layers/kv-block-alignment.js';
import type { LayeredSample } from '../layers/schema.js';
import type { ProbeInfo } from '../probe/open-result.js';
import type { KvGeometryOf } from '../sources/hf-config.js';

export interface Check {
  id: string;
  /** true: fine; false: something to fix; null: not applicable here. */
  ok: boolean | null;
  title: string;
  detail: string;
  fix: string | null;
}

export interface DoctorFacts {
  addon: { ok: true; path: string } | { ok: false; error: GpuLayersError };
  probe: { ok: true; info: ProbeInfo; sample: LayeredSample } | { ok: false; error: GpuLayersError } | null;
  /** /dev/nvidiactl and /dev/nvidia<N>: whether this user may open them. */
  deviceFiles: { path: string; access: 'ok' | 'missing' | 'denied' }[];
  /** Pids /proc lists here. */
  visiblePids: ReadonlySet<number>;
  cudaVisibleDevices: string | undefined;
  /**
   * With --hf-config and one --vllm server (the config is used for one server only, as in the
   * layers): the model's KV geometry, that server's normalised /metrics URL, and the cache_dtype
   * its vllm:cache_config_info gives (null when it gives none or could not be read). Else null.
   */
  kvCache: { geometry: KvGeometryOf; metricsUrl: string; cacheDtype: string | null } | null;
}

const check = (id: string, ok: boolean | null, title: string, detail: string, fix: string | null = null): Check => ({ id, ok, title, detail, fix });

function gpuProcesses(sample: LayeredSample) {
  return sample.devices.flatMap((d) => [...(d.processes ?? []), ...(d.mig?.devices ?? []).flatMap((m) => m.processes ?? [])]);
}

function nvmlChecks(facts: DoctorFacts): Check[] {
  if (facts.probe === null) return [];
  if (!facts.probe.ok) {
    const { error } = facts.probe;
    return [check('nvml', false, 'NVML', `${error.message} [${error.code}]`, error.hints.join('; ') || null)];
  }
  const { info, sample } = facts.probe;
  const library = info.library.nvml.loadedPath ?? info.library.nvml.requested;
  const checks = [check('nvml', true, 'NVML', `driver ${sample.driver.version ?? 'n/a'}, NVML ${sample.driver.nvmlVersion ?? 'n/a'}, from ${library}`)];
  const missing = Object.entries(info.library.nvml.symbols).filter(([key, symbol]) => symbol === null && !['confComputeMemSizeInfo', 'runningProcessDetailList'].includes(key));
  checks.push(
    missing.length === 0
      ? check('nvml-symbols', true, 'NVML functions', 'every function gpu-layers uses is exported')
      : check('nvml-symbols', false, 'NVML functions', `this driver exports none of the names for: ${missing.map(([k]) => k).join(', ')}; those fields are null`, 'a newer NVIDIA driver'),
  );
  const deviceErrors = sample.devices.filter((d) => d.errors.device !== undefined);
  checks.push(
    sample.devices.length === 0
      ? check('devices', false, 'GPUs', sample.errors.devices?.message ?? 'NVML lists no GPU', 'check `nvidia-smi`; in a container, pass the GPUs through (--gpus all)')
      : deviceErrors.length > 0
        ? check('devices', false, 'GPUs', deviceErrors.map((d) => `GPU ${d.index}: ${d.errors.device!.message}`).join('; '), 'NO_PERMISSION: run as root or a user allowed on those devices; GPU_IS_LOST: check dmesg for Xid errors')
        : check('devices', true, 'GPUs', `${sample.devices.length} GPU(s): ${[...new Set(sample.devices.map((d) => d.name))].join(', ')}`),
  );
  const cuda = sample.cuda;
  const visible = facts.cudaVisibleDevices !== undefined ? ` (CUDA_VISIBLE_DEVICES=${facts.cudaVisibleDevices} in this shell)` : '';
  checks.push(
    cuda.available
      ? check('cuda', true, 'CUDA driver', `${cuda.deviceCount} device(s) visible${visible}; cuda:N ordinals are for this environment`)
      : check('cuda', false, 'CUDA driver', `${cuda.error?.message ?? 'unavailable'}; cuda:N ordinals unknown`, 'install the CUDA driver library (libcuda.so.1) or name it with GPU_LAYERS_CUDA_LIB'),
  );
  return checks;
}

function deviceFileCheck(facts: DoctorFacts): Check[] {
  if (facts.deviceFiles.length === 0) return [];
  const denied = facts.deviceFiles.filter((f) => f.access === 'denied').map((f) => f.path);
  const missing = facts.deviceFiles.filter((f) => f.access === 'missing').map((f) => f.path);
  if (denied.length > 0) {
    return [check('permissions', false, 'Device files', `not accessible to this user: ${denied.join(', ')}`, 'run as root, or add this user to the group that owns /dev/nvidia*')];
  }
  if (missing.length === facts.deviceFiles.length) {
    return [check('permissions', false, 'Device files', 'no /dev/nvidia* here', 'load the NVIDIA kernel driver; in a container, start it with the NVIDIA container runtime')];
  }
  return [check('permissions', true, 'Device files', `${facts.deviceFiles.filter((f) => f.access === 'ok').map((f) => f.path).join(', ')} accessible`)];
}

function pidNamespaceCheck(facts: DoctorFacts, sample: LayeredSample): Check {
  const pids = [...new Set(gpuProcesses(sample).map((p) => p.pid))];
  if (pids.length === 0) return check('pid-namespace', null, 'PID namespace', 'no GPU process to look up');
  const hidden = pids.filter((pid) => !facts.visiblePids.has(pid));
  if (hidden.length === 0) return check('pid-namespace', true, 'PID namespace', `all ${pids.length} GPU process(es) visible in /proc`);
  return check(
    'pid-namespace',
    false,
    'PID namespace',
    `${hidden.length} of ${pids.length} GPU process(es) not in this /proc (pids ${hidden.slice(0, 8).join(', ')}): NVML reports host pids, so commands, host memory and companion matching are unknown for them, and the exporter labels them by host pid only`,
    'run gpu-layers in the host PID namespace (docker run --pid=host, Kubernetes hostPID: true) or on the host, or mount the host\'s /proc (e.g. at /host/proc) and pass --proc-root /host/proc',
  );
}

function calibrationCheck(sample: LayeredSample): Check {
  const source = sample.sources.calibration;
  const uncalibrated = sample.devices.filter((d) => d.contextBytes === null && d.errors.device === undefined);
  if (uncalibrated.length === 0 && sample.devices.length > 0) {
    return check('calibration', true, 'Context size', `calibrated for every GPU with this driver (${source.location})`);
  }
  return check(
    'calibration',
    false,
    'Context size',
    `${source.error?.message ?? `no entry for GPU ${uncalibrated.map((d) => d.index).join(', ')} with driver ${sample.driver.version}`}; the CUDA graph estimate cannot be made`,
    '`gpu-layers calibrate` (once per driver; it creates a context in a short-lived child process)',
  );
}

function companionChecks(sample: LayeredSample): Check[] {
  const source = sample.sources.companion;
  if (source.location === null) {
    return [check('companion', false, 'Allocator layer', 'no stats folder configured: PyTorch allocator figures are unknown', 'enable the companion in the workload and set GPU_LAYERS_STATS_DIR here too (`gpu-layers companion`)')];
  }
  if (!source.ok) return [check('companion', false, 'Allocator layer', source.error?.message ?? 'stats folder unusable', '`gpu-layers companion` shows how to enable it')];
  const processes = gpuProcesses(sample);
  const problems = processes.filter((p) => p.layers.allocator === null);
  const byCode = new Map<string, number[]>();
  for (const p of problems) {
    const code = p.errors?.['layers.allocator']?.code ?? 'UNKNOWN';
    byCode.set(code, [...(byCode.get(code) ?? []), p.pid]);
  }
  const fixes: Record<string, string> = {
    COMPANION_MISSING: 'start those workloads with the companion (`gpu-layers companion`); processes that are not PyTorch need nothing',
    COMPANION_STALE: 'the companion stopped writing: the process may be hung; check its threads (py-spy dump)',
    COMPANION_OTHER_PROCESS: 'old files of exited processes: safe to delete',
    COMPANION_INVALID: 'a file that is not the companion\'s: delete it',
    COMPANION_NO_DEVICE: 'the process uses this GPU outside PyTorch, or through CUDA_VISIBLE_DEVICES the companion cannot map',
    COMPANION_UNTRUSTED: "a file another user (or a link) put in the process's place: find who wrote it (ls -l); run gpu-layers as root or as the workload's user so /proc shows who runs it",
  };
  if (processes.length === 0) return [check('companion', null, 'Allocator layer', `stats folder ${source.location}; no GPU process to match`)];
  if (problems.length === 0) return [check('companion', true, 'Allocator layer', `companion figures for all ${processes.length} GPU process(es)`)];
  return [...byCode].map(([code, pids]) =>
    check('companion', false, 'Allocator layer', `${code} for pid ${pids.slice(0, 8).join(', ')}${pids.length > 8 ? ', ...' : ''}`, fixes[code] ?? null),
  );
}

function vllmChecks(sample: LayeredSample): Check[] {
  const checks = sample.sources.vllmMetrics.map((m) =>
    m.ok
      ? check('vllm', true, 'vLLM metrics', `${m.location} answers`)
      : check('vllm', false, 'vLLM metrics', m.error?.message ?? 'unavailable', 'check the URL and port (the server\'s --port), or raise --vllm-timeout'),
  );
  for (const [id, title, source] of [['vllm-log', 'vLLM log', sample.sources.vllmLog], ['hf-config', 'Model config', sample.sources.hfConfig]] as const) {
    if (source === null) continue;
    checks.push(source.ok ? check(id, true, title, `${source.location} read`) : check(id, false, title, source.error?.message ?? 'unreadable', null));
  }
  return checks;
}

/**
 * How the served KV cache sits on PyTorch's allocator (layers/kv-block-alignment.ts), for the one
 * server named with the model config: its block size and num_gpu_blocks from the framework layer,
 * its GPU processes as the tensor-parallel size (as the layers count them), the cache dtype from
 * /metrics ("auto" when not given, as the layers assume). A loss only when worth fixing.
 */
function kvAlignmentCheck(facts: DoctorFacts, sample: LayeredSample): Check[] {
  const kv = facts.kvCache;
  if (kv === null) return [];
  const title = 'KV block alignment';
  const members = new Map(gpuProcesses(sample).filter((p) => p.layers.framework?.sources.metrics === kv.metricsUrl).map((p) => [p.pid, p.layers.framework!]));
  const framework = [...members.values()][0];
  if (framework === undefined) return [check('kv-alignment', null, title, `no GPU process belongs to ${kv.metricsUrl}`)];
  if (framework.blockSize === null || framework.numGpuBlocks === null) {
    return [check('kv-alignment', null, title, `${kv.metricsUrl} gives no ${framework.blockSize === null ? 'block_size' : 'num_gpu_blocks'} (vllm:cache_config_info)`)];
  }
  const geometry = kv.geometry(members.size, framework.blockSize, kv.cacheDtype ?? 'auto');
  if (!geometry.ok) return [check('kv-alignment', null, title, geometry.message)];
  const alignment = kvBlockAlignment({ geometry: geometry.geometry, numGpuBlocks: framework.numGpuBlocks });
  const pool = alignment.pool;
  if (pool === null) return [check('kv-alignment', null, title, `${kv.metricsUrl} has no KV blocks (num_gpu_blocks ${framework.numGpuBlocks})`)];
  if (alignment.worthFixing) {
    // The pool's loss is the tensors' rounding: more blocks in the same segments is its fix. A
    // --block-size in the advice aligns pages allocated one by one, not the pool.
    const fix = pool.sameMemoryNumGpuBlocks !== null ? `restart vLLM with --num-gpu-blocks-override ${pool.sameMemoryNumGpuBlocks}: the same memory, ${pool.sameMemoryNumGpuBlocks - pool.numGpuBlocks} more blocks` : null;
    return [check('kv-alignment', false, title, alignment.advice!, fix)];
  }
  const figures = `${alignment.numLayers} per-layer tensors of ${framework.numGpuBlocks} blocks of ${formatBytes(alignment.blockBytesPerLayer)}`;
  return [
    check(
      'kv-alignment',
      true,
      title,
      pool.lostBytes === 0
        ? `aligned: ${figures} fill the allocator's segments exactly`
        : `aligned within tolerance: ${figures} lose ${formatBytes(pool.lostBytes)} to rounding (${(pool.lostFraction * 100).toFixed(2)}% of the pool), under ${WORTH_FIXING_FRACTION * 100}% and ${formatBytes(WORTH_FIXING_BYTES)}`,
    ),
  ];
}

export function doctorChecks(facts: DoctorFacts): Check[] {
  const checks: Check[] = [
    facts.addon.ok
      ? check('addon', true, 'Native addon', `loaded from ${facts.addon.path}`)
      : check('addon', false, 'Native addon', facts.addon.error.message, facts.addon.error.hints.join('; ') || null),
  ];
  checks.push(...deviceFileCheck(facts));
  checks.push(...nvmlChecks(facts));
  if (facts.probe !== null && facts.probe.ok) {
    const { sample } = facts.probe;
    checks.push(pidNamespaceCheck(facts, sample), calibrationCheck(sample), ...companionChecks(sample), ...vllmChecks(sample), ...kvAlignmentCheck(facts, sample));
  }
  return checks;
}
