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
import { localAddresses, readVllmEndpoint } from '../sources/vllm-endpoint.js';
import { VllmLogFollower } from '../sources/vllm-log.js';
import type { LayerReaders } from './read-layers.js';
import { rekeyLogPids } from './log-pid-namespaces.js';
import type { SourceStatus } from './schema.js';
import { sourceStatus } from './source-status.js';
import { attributeFramework, type FrameworkInputs, type FrameworkResult, type GpuProcessInfo } from './vllm-attribution.js';

export interface FrameworkSourceOptions {
  vllm?: readonly string[];
  vllmLog?: string;
  hfConfig?: string;
  vllmTimeoutMs?: number;
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
 * Reads the vLLM sources given and attributes each GPU process to an engine: by the listening
 * socket of a local server and that process's descendants, else by command line.
 */
export async function readFramework(pids: readonly number[], options: FrameworkSourceOptions, procRoot: string, readers: LayerReaders = {}): Promise<FrameworkReading> {
  const endpoints = options.vllm ?? [];
  const local = localAddresses();
  const follower = options.vllmLog === undefined ? null : followerOf(options.vllmLog, readers);
  const [parents, readEndpoints, logRead, hfRead] = await Promise.all([
    readParents(procRoot),
    Promise.all(endpoints.map((e) => readVllmEndpoint(e, options.vllmTimeoutMs ?? 2000, procRoot, local))),
    // The log streams through in bounded memory; config.json is read whole, up to a limit.
    follower === null ? null : follower.read().then((parsed) => ({ parsed }), (error: Error) => ({ error })),
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

  const commandCache = new Map<number, Promise<string | null>>();
  const command = (pid: number) => {
    let value = commandCache.get(pid);
    if (value === undefined) commandCache.set(pid, (value = readCommandLine(pid, procRoot)));
    return value;
  };
  const processes: GpuProcessInfo[] = await Promise.all(
    pids.map(async (pid) => {
      const chain = ancestry(pid, parents);
      return { pid, ancestry: chain, commands: await Promise.all(chain.map(command)) };
    }),
  );
  const results = attributeFramework(processes, { endpoints: readEndpoints, log, geometry });
  const metrics = readEndpoints.map((e) => sourceStatus(e.metrics.url, e.metrics.ok ? null : e.metrics.error));
  return { results, metrics, log: logStatus, hf: hfStatus };
}
