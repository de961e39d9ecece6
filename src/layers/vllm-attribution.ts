/**
 * Which GPU processes belong to which vLLM server, and the framework layer each gets. A server
 * given by URL owns the process listening on its port and that process's descendants (the
 * engine core and its tensor-parallel workers); when the listener cannot be seen and only one
 * server was given, processes whose command line (or an ancestor's) mentions vLLM are taken, and
 * the layer says how the match was made (`matchedBy`). Startup-log figures tagged with a pid go to that
 * process; untagged ones only where there is no doubt whose they are. Pure.
 */
import { sourceError } from '../sample/field-errors.js';
import type { FieldError, FieldErrors } from '../sample/schema.js';
import type { KvGeometryResult } from '../sources/hf-config.js';
import type { VllmEndpoint } from '../sources/vllm-endpoint.js';
import type { VllmLog, VllmLogFigures, VllmLogStats } from '../sources/vllm-log.js';
import type { VllmEngineMetrics, VllmMetricsResult } from '../sources/vllm-metrics.js';
import { kvBlockAlignment } from './kv-block-alignment.js';
import type { FrameworkLayer, RequestLoad } from './schema.js';

export interface GpuProcessInfo {
  pid: number;
  /** The process and its ancestors, nearest first. */
  ancestry: number[];
  /** Their command lines (null where not readable), same order. */
  commands: (string | null)[];
}

export interface FrameworkInputs {
  endpoints: VllmEndpoint[];
  log: { path: string; parsed: VllmLog } | null;
  /** KV geometry from a Hugging Face config for a given tensor-parallel size, when given. */
  geometry: ((tensorParallel: number, blockSize: number, cacheDtype: string) => KvGeometryResult) | null;
  /**
   * The request load of each server at this sample, by /metrics URL (from its counters since the
   * last sample), and from the log's stats lines when no /metrics is read (absent: not known).
   */
  loads?: ReadonlyMap<string, RequestLoad>;
  logLoad?: { load: RequestLoad; stats: VllmLogStats } | FieldError | null;
}

export type FrameworkResult = { layer: FrameworkLayer; errors: FieldErrors } | { layer: null; reason: FieldError };

type MatchedBy = FrameworkLayer['matchedBy'];

interface Instance {
  members: number[];
  matchedBy: Map<number, MatchedBy>;
  engine: VllmEngineMetrics | null;
  engineReason: FieldError | null;
  url: string | null;
  log: { path: string; parsed: VllmLog } | null;
}

const VLLM = /vllm/i;

function mentionsVllm(process: GpuProcessInfo): boolean {
  return process.commands.some((command) => command !== null && VLLM.test(command));
}

function engineOf(metrics: VllmMetricsResult): { engine: VllmEngineMetrics | null; reason: FieldError | null } {
  if (!metrics.ok) return { engine: null, reason: metrics.error };
  if (metrics.engines.length > 1) {
    return { engine: null, reason: sourceError('AMBIGUOUS_ENGINE', `${metrics.url} serves ${metrics.engines.length} engines (data parallel); which process serves which is not known`) };
  }
  return { engine: metrics.engines[0] ?? null, reason: null };
}

function instances(processes: GpuProcessInfo[], inputs: FrameworkInputs): Instance[] {
  const byCommand = processes.filter(mentionsVllm).map((p) => p.pid);
  const instance = (members: [number, MatchedBy][], fields: Omit<Instance, 'members' | 'matchedBy'>): Instance => {
    const matchedBy = new Map<number, MatchedBy>();
    for (const [pid, how] of members) if (!matchedBy.has(pid)) matchedBy.set(pid, how);
    return { members: [...matchedBy.keys()], matchedBy, ...fields };
  };
  const found: Instance[] = inputs.endpoints.map((endpoint) => {
    const { engine, reason: engineReason } = engineOf(endpoint.metrics);
    let members: [number, MatchedBy][] = [];
    if (endpoint.listeners !== null && endpoint.listeners.length > 0) {
      members = processes.filter((p) => p.ancestry.some((a) => endpoint.listeners!.includes(a))).map((p) => [p.pid, 'listening-socket']);
    } else if (inputs.endpoints.length === 1) {
      members = byCommand.map((pid) => [pid, 'command-line']);
    }
    return instance(members, { engine, engineReason, url: endpoint.metrics.url, log: null });
  });
  if (inputs.log !== null) {
    if (found.length === 1) {
      found[0]!.log = inputs.log;
    } else if (found.length === 0) {
      const tagged = processes.filter((p) => inputs.log!.parsed.byPid.has(p.pid)).map((p): [number, MatchedBy] => [p.pid, 'log-pid']);
      const commands = inputs.log.parsed.matchedLines > 0 ? byCommand.map((pid): [number, MatchedBy] => [pid, 'command-line']) : [];
      found.push(instance([...tagged, ...commands], { engine: null, engineReason: null, url: null, log: inputs.log }));
    } else {
      // Several servers and one log: its pid-tagged figures still say whose they are.
      for (const instance of found) instance.log = { ...inputs.log, parsed: { ...inputs.log.parsed, untagged: emptyFigures() } };
    }
  }
  return found;
}

function emptyFigures(): VllmLogFigures {
  return { weightsBytes: null, kvCacheBytes: null, numGpuBlocks: null, kvCacheTokens: null, cudaGraphBytes: null, nonTorchBytes: null };
}

/** The log figures for one member: its own tagged ones over the untagged, when those are surely its. */
function figuresFor(pid: number, instance: Instance): VllmLogFigures {
  const log = instance.log?.parsed;
  if (log === undefined) return emptyFigures();
  const untaggedOwners = instance.members.filter((member) => !log.byPid.has(member));
  const untagged = untaggedOwners.length === 1 && untaggedOwners[0] === pid ? log.untagged : emptyFigures();
  const own = log.byPid.get(pid) ?? emptyFigures();
  const merged = { ...untagged };
  for (const key of Object.keys(own) as (keyof VllmLogFigures)[]) if (own[key] !== null) merged[key] = own[key];
  return merged;
}

function layerFor(pid: number, instance: Instance, inputs: FrameworkInputs): { layer: FrameworkLayer; errors: FieldErrors } {
  const errors: FieldErrors = {};
  const figures = figuresFor(pid, instance);
  const engine = instance.engine;
  const fromMetrics = <T>(value: T | null | undefined, key: string): T | null => {
    if (value !== null && value !== undefined) return value;
    errors[`layers.framework.${key}`] =
      instance.engineReason ?? (instance.url === null ? sourceError('INPUT_MISSING', 'needs the server\'s /metrics (--vllm URL)') : sourceError('NOT_REPORTED', `${instance.url} does not report it`));
    return null;
  };
  const fromLog = (value: number | null, key: string, line: string): number | null => {
    if (value === null) {
      errors[`layers.framework.${key}`] =
        instance.log === null ? sourceError('INPUT_MISSING', `needs the startup log (--vllm-log FILE): "${line}"`) : sourceError('NOT_REPORTED', `${instance.log.path} has no "${line}" line for this process`);
    }
    return value;
  };
  const numGpuBlocks = engine?.numGpuBlocks ?? figures.numGpuBlocks;
  const blockSize = engine?.blockSize ?? null;
  let kvCacheBytes = figures.kvCacheBytes;
  let kvCacheSource: FrameworkLayer['kvCacheSource'] = kvCacheBytes !== null ? 'log' : null;
  if (kvCacheBytes === null) {
    if (inputs.geometry !== null && inputs.endpoints.length > 1) {
      errors['layers.framework.kvCacheBytes'] = sourceError('AMBIGUOUS_CONFIG', 'one model config (--hf-config) for several vLLM servers: it is used only when one server is given');
    } else if (numGpuBlocks !== null && inputs.geometry !== null) {
      const geometry = inputs.geometry(Math.max(1, instance.members.length), blockSize ?? 16, engine?.cacheDtype ?? 'auto');
      if (!geometry.ok) {
        errors['layers.framework.kvCacheBytes'] = sourceError(geometry.code, geometry.message);
      } else if (!Number.isSafeInteger(numGpuBlocks * geometry.geometry.bytesPerBlock)) {
        errors['layers.framework.kvCacheBytes'] = sourceError('VALUE_OUT_OF_RANGE', `${numGpuBlocks} blocks of ${geometry.geometry.bytesPerBlock} bytes is more than any GPU holds`);
      } else {
        kvCacheBytes = numGpuBlocks * geometry.geometry.bytesPerBlock;
        kvCacheSource = 'blocks-x-config';
      }
    } else {
      errors['layers.framework.kvCacheBytes'] = sourceError(
        'INPUT_MISSING',
        'needs the startup log ("Available KV cache memory"), or num_gpu_blocks (/metrics) with the model config (--hf-config)',
      );
    }
  }
  // Without /metrics, the stats lines of the log stand in for the figures they carry.
  const logged = engine === null && inputs.logLoad !== undefined && inputs.logLoad !== null && !('code' in inputs.logLoad) ? inputs.logLoad : null;
  const kvCacheUsage = logged?.stats.kvCacheUsage ?? fromMetrics(engine?.kvCacheUsage, 'kvCacheUsage');
  const load = instance.url !== null ? (inputs.loads?.get(instance.url) ?? null) : (logged?.load ?? null);
  if (load === null) {
    errors['layers.framework.load'] =
      inputs.logLoad !== undefined && inputs.logLoad !== null && 'code' in inputs.logLoad && engine === null
        ? inputs.logLoad
        : instance.engineReason ?? sourceError('INPUT_MISSING', "needs the server's /metrics (--vllm URL) or the stats lines of its log (--vllm-log FILE)");
  }
  const layer: FrameworkLayer = {
    engine: 'vllm',
    kvBlockAlignment: alignmentOf(instance, inputs, numGpuBlocks, blockSize, engine?.cacheDtype ?? 'auto'),
    matchedBy: instance.matchedBy.get(pid)!,
    weightsBytes: fromLog(figures.weightsBytes, 'weightsBytes', 'Model loading took'),
    kvCacheBytes,
    kvCacheSource,
    kvCacheUsage,
    kvCacheInUseBytes: kvCacheBytes !== null && kvCacheUsage !== null ? Math.round(kvCacheBytes * kvCacheUsage) : null,
    numGpuBlocks: numGpuBlocks ?? fromMetrics<number>(null, 'numGpuBlocks'),
    blockSize: fromMetrics(blockSize, 'blockSize'),
    requestsRunning: logged?.stats.running ?? fromMetrics(engine?.requestsRunning, 'requestsRunning'),
    requestsWaiting: logged?.stats.waiting ?? fromMetrics(engine?.requestsWaiting, 'requestsWaiting'),
    counters: engine?.counters ?? fromMetrics(null, 'counters'),
    load,
    cudaGraphBytes: fromLog(figures.cudaGraphBytes, 'cudaGraphBytes', 'Graph capturing finished ..., took'),
    nonTorchBytes: fromLog(figures.nonTorchBytes, 'nonTorchBytes', 'non_torch_memory'),
    sources: { metrics: instance.url, log: instance.log?.path ?? null },
  };
  return { layer, errors };
}

/** The KV blocks' alignment with the allocator, with one server and its model config known. */
function alignmentOf(instance: Instance, inputs: FrameworkInputs, numGpuBlocks: number | null, blockSize: number | null, cacheDtype: string): FrameworkLayer['kvBlockAlignment'] {
  if (inputs.geometry === null || inputs.endpoints.length > 1 || blockSize === null) return null;
  const geometry = inputs.geometry(Math.max(1, instance.members.length), blockSize, cacheDtype);
  if (!geometry.ok) return null;
  const alignment = kvBlockAlignment({ geometry: geometry.geometry, numGpuBlocks });
  return {
    blockBytesPerLayer: alignment.blockBytesPerLayer,
    poolLostBytes: alignment.pool?.lostBytes ?? null,
    poolLostShare: alignment.pool?.lostFraction ?? null,
    alignedBlockSize: alignment.alignedBlockSize,
    worthFixing: alignment.worthFixing,
    advice: alignment.advice,
  };
}

export function attributeFramework(processes: GpuProcessInfo[], inputs: FrameworkInputs): Map<number, FrameworkResult> {
  const results = new Map<number, FrameworkResult>();
  const requested = inputs.endpoints.length > 0 || inputs.log !== null;
  const all = instances(processes, inputs);
  for (const process of processes) {
    const instance = all.find((i) => i.members.includes(process.pid));
    if (instance !== undefined) {
      results.set(process.pid, layerFor(process.pid, instance, inputs));
    } else {
      results.set(process.pid, {
        layer: null,
        reason: requested
          ? sourceError('NOT_IN_VLLM_INSTANCE', 'not part of the vLLM server(s) given (not a descendant of the process listening on its port)')
          : sourceError('NOT_REQUESTED', 'no vLLM source given (--vllm URL, --vllm-log FILE)'),
      });
    }
  }
  return results;
}
