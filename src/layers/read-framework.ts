/**
 * The framework half of the layer sources, loaded only when a vLLM source is given: each vLLM
 * server's /metrics, the startup log and the model's config.json, read in parallel by sources/,
 * each failing on its own, then matched to the GPU processes through the process tree.
 */
import path from 'node:path';

import { sourceError } from '../sample/field-errors.js';
import { readHfConfig } from '../sources/hf-config.js';
import { readInnermostPids } from '../sources/process-identity.js';
import { ancestry, readCommandLine, readParents } from '../sources/process-tree.js';
import { localAddresses, readVllmEndpoint, type VllmEndpoint } from '../sources/vllm-endpoint.js';
import { VllmLogFollower, type VllmLog, type VllmLogStats } from '../sources/vllm-log.js';
import type { FieldError } from '../sample/schema.js';
import { nextRequestLoad, requestLoadFromLog } from './request-load.js';
import type { LayerReaders } from './read-layers.js';
import { rekeyLogPids } from './log-pid-namespaces.js';
import type { RequestLoad, SourceStatus } from './schema.js';
import { sourceStatus } from './source-status.js';
import { attributeFramework, type FrameworkInputs, type FrameworkResult, type GpuProcessInfo } from './vllm-attribution.js';

export interface FrameworkSourceOptions {
  vllm?: readonly string[];
  vllmLog?: string;
  hfConfig?: string;
  vllmTimeoutMs?: number;
  /** The clock (default Date.now): a recorded or simulated host brings its own. */
  now?: () => number;
}

export interface FrameworkReading {
  results: Map<number, FrameworkResult>;
  metrics: SourceStatus[];
  log: SourceStatus | null;
  hf: SourceStatus | null;
}

/** The log's follower kept in `readers` (a new one when there is none, or it follows another file). */
function followerOf(file: string, readers: LayerReaders): VllmLogFollower {
  const resolved = path.resolve(file);
  if (readers.vllmLog?.file !== resolved) readers.vllmLog = new VllmLogFollower(resolved);
  return readers.vllmLog;
}

/**
 * Each server's load from its counters since the last sample (the state kept in `readers`); a
 * server that answers with several engines (data parallel) has no one load.
 */
function endpointLoads(endpoints: readonly VllmEndpoint[], readers: LayerReaders, now: number): Map<string, RequestLoad> {
  const states = (readers.requestLoads ??= new Map());
  const loads = new Map<string, RequestLoad>();
  for (const { metrics } of endpoints) {
    if (!metrics.ok || metrics.engines.length !== 1) continue;
    const engine = metrics.engines[0]!;
    const next = nextRequestLoad(states.get(metrics.url) ?? null, engine.counters, engine.requestsRunning, engine.requestsWaiting, now);
    states.set(metrics.url, next.state);
    loads.set(metrics.url, next.load);
  }
  // A server no longer given or answering starts again from nothing when it comes back.
  for (const url of states.keys()) if (!loads.has(url)) states.delete(url);
  return loads;
}

/** vLLM logs its stats every few seconds while busy (at DEBUG only when idle): older than this is not now. */
const LOG_STATS_FRESH_MS = 60_000;

/** The load from the log's latest stats line, or why there is none. */
function logLoad(parsed: VllmLog, file: string, now: number): { load: RequestLoad; stats: VllmLogStats } | FieldError {
  if (parsed.stats.length === 0) return sourceError('LOG_NO_STATS', `${file} has no stats lines ("Avg prompt throughput"): vLLM writes them every VLLM_LOG_STATS_INTERVAL seconds while busy`);
  if (parsed.stats.length > 1) return sourceError('AMBIGUOUS_ENGINE', `${file} logs stats of ${parsed.stats.length} engines (data parallel); which process serves which is not known`);
  const stats = parsed.stats[0]!;
  if (stats.loggedAt === null || now - stats.loggedAt > LOG_STATS_FRESH_MS) {
    return sourceError('LOG_STATS_STALE', `the last stats line of ${file} is ${stats.loggedAt === null ? 'without a time' : `${Math.round((now - stats.loggedAt) / 1000)} s old`}: vLLM V1 logs them at INFO only while busy, so the server is probably idle, but the log cannot say`);
  }
  return { load: requestLoadFromLog(stats, now), stats };
}

/**
 * Reads the vLLM sources given and attributes each GPU process to an engine: by the listening
 * socket of a local server and that process's descendants, else by command line.
 */
export async function readFramework(pids: readonly number[], options: FrameworkSourceOptions, procRoot: string, readers: LayerReaders = {}): Promise<FrameworkReading> {
  const now = (options.now ?? Date.now)();
  const endpoints = options.vllm ?? [];
  const local = localAddresses();
  const follower = options.vllmLog === undefined ? null : followerOf(options.vllmLog, readers);
  const commandCache = new Map<number, Promise<string | null>>();
  const command = (pid: number) => {
    let value = commandCache.get(pid);
    if (value === undefined) commandCache.set(pid, (value = readCommandLine(pid, procRoot)));
    return value;
  };
  const parentsRead = readParents(procRoot);
  const processesRead = parentsRead.then((parents) =>
    Promise.all(
      pids.map(async (pid): Promise<GpuProcessInfo> => {
        const chain = ancestry(pid, parents);
        return { pid, ancestry: chain, commands: await Promise.all(chain.map(command)) };
      }),
    ),
  );
  const [processes, readEndpoints, logRead, hfRead] = await Promise.all([
    processesRead,
    // A local server's port is pinned to these processes before its page is read.
    Promise.all([parentsRead, processesRead]).then(([parents, gpu]) =>
      Promise.all(endpoints.map((e) => readVllmEndpoint(e, options.vllmTimeoutMs ?? 2000, procRoot, local, { processes: gpu, parents, commandOf: command }))),
    ),
    // The log streams through in bounded memory; config.json is read whole, up to a limit.
    follower === null ? null : follower.read(now).then((parsed) => ({ parsed }), (error: Error) => ({ error })),
    options.hfConfig === undefined ? null : readHfConfig(options.hfConfig),
  ]);

  let log: FrameworkInputs['log'] = null;
  let logStatus: SourceStatus | null = null;
  if (options.vllmLog !== undefined && logRead !== null) {
    if ('error' in logRead) {
      logStatus = sourceStatus(options.vllmLog, sourceError('LOG_UNREADABLE', `${options.vllmLog}: ${logRead.error.message}`));
    } else {
      const parsed = logRead.parsed;
      parsed.byPid = rekeyLogPids(parsed.byPid, await readInnermostPids(pids, procRoot));
      if (parsed.matchedLines === 0) {
        logStatus = sourceStatus(options.vllmLog, sourceError('LOG_NO_KNOWN_LINES', `${options.vllmLog} has none of the vLLM startup lines gpu-layers knows (is it a vLLM log?)`));
      } else {
        log = { path: options.vllmLog, parsed };
        logStatus = sourceStatus(options.vllmLog, null);
      }
    }
  }

  const geometry = hfRead !== null && hfRead.ok ? hfRead.geometry : null;
  const hfStatus = options.hfConfig === undefined || hfRead === null ? null : sourceStatus(options.hfConfig, hfRead.ok ? null : hfRead.error);

  const results = attributeFramework(processes, { endpoints: readEndpoints, log, geometry, loads: endpointLoads(readEndpoints, readers, now), logLoad: log === null ? null : logLoad(log.parsed, log.path, now) });
  const metrics = readEndpoints.map((e) => sourceStatus(e.metrics.url, e.metrics.ok ? null : e.metrics.error));
  return { results, metrics, log: logStatus, hf: hfStatus };
}
