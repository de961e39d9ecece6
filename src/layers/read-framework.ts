/**
 * The framework half of the layer sources, loaded only when a vLLM source is given: each vLLM
 * server's /metrics, the startup log and the model's config.json, read in parallel, each failing
 * on its own, then matched to the GPU processes through the process tree.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { hostname, networkInterfaces } from 'node:os';

import { sourceError } from '../sample/field-errors.js';
import { kvGeometry, MAX_HF_CONFIG_BYTES } from '../sources/hf-config.js';
import { ancestry, listeningPids, readCommandLine, readParents } from '../sources/process-tree.js';
import { parseStatus } from '../sources/proc-files.js';
import { FileRefusedError, readTextFile } from '../sources/read-text-file.js';
import { VllmLogFollower } from '../sources/vllm-log.js';
import { fetchVllmMetrics, metricsUrl } from '../sources/vllm-metrics.js';
import { rekeyLogPids } from './log-pid-namespaces.js';
import type { SourceStatus } from './schema.js';
import { sourceStatus } from './source-status.js';
import { attributeFramework, type FrameworkInputs, type FrameworkResult, type GpuProcessInfo, type VllmEndpoint } from './vllm-attribution.js';

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

/** Each pid's pid in its innermost PID namespace (the last NSpid entry), where /proc says. */
async function innermostPids(pids: readonly number[], procRoot: string): Promise<Map<number, number>> {
  const entries = await Promise.all(
    pids.map(async (pid) => {
      const text = await readFile(`${procRoot}/${pid}/status`, 'utf8').catch(() => null);
      const nspid = text === null ? null : parseStatus(text).nspid;
      return [pid, nspid?.[nspid.length - 1]] as const;
    }),
  );
  return new Map(entries.filter((e): e is readonly [number, number] => e[1] !== undefined));
}

function localAddresses(): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', hostname()]);
  for (const list of Object.values(networkInterfaces())) for (const address of list ?? []) names.add(address.address);
  return names;
}

async function readEndpoint(endpoint: string, timeoutMs: number, procRoot: string, local: Set<string>): Promise<VllmEndpoint> {
  const metrics = await fetchVllmMetrics(endpoint, timeoutMs);
  let listeners: number[] | null = null;
  try {
    const url = new URL(metricsUrl(endpoint));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (local.has(host)) {
      const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
      listeners = await listeningPids(port, procRoot);
    }
  } catch {
    // not a URL: fetchVllmMetrics already said so
  }
  return { metrics, listeners };
}

/**
 * One follower per log, kept across calls: watch, record and serve read the log every interval,
 * and a follower parses only what was appended since. A few paths at most are ever in use; past
 * that the oldest is dropped (and would read its log whole again).
 */
const MAX_FOLLOWED_LOGS = 8;
const logFollowers = new Map<string, VllmLogFollower>();

function followerOf(file: string): VllmLogFollower {
  const key = path.resolve(file);
  let follower = logFollowers.get(key);
  if (follower === undefined) {
    if (logFollowers.size >= MAX_FOLLOWED_LOGS) logFollowers.delete(logFollowers.keys().next().value!);
    follower = new VllmLogFollower(key);
    logFollowers.set(key, follower);
  }
  return follower;
}

/**
 * Reads the vLLM sources given and attributes each GPU process to an engine: by the listening
 * socket of a local server and that process's descendants, else by command line.
 */
export async function readFramework(pids: readonly number[], options: FrameworkSourceOptions, procRoot: string): Promise<FrameworkReading> {
  const endpoints = options.vllm ?? [];
  const local = localAddresses();
  const [parents, readEndpoints, logRead, hfText] = await Promise.all([
    readParents(procRoot),
    Promise.all(endpoints.map((e) => readEndpoint(e, options.vllmTimeoutMs ?? 2000, procRoot, local))),
    // The log streams through in bounded memory; config.json is read whole, up to a limit.
    options.vllmLog === undefined ? null : followerOf(options.vllmLog).read().then((parsed) => ({ parsed }), (error: Error) => ({ error })),
    options.hfConfig === undefined ? null : readTextFile(options.hfConfig, MAX_HF_CONFIG_BYTES).then((text) => ({ text }), (error: Error) => ({ error })),
  ]);

  let log: FrameworkInputs['log'] = null;
  let logStatus: SourceStatus | null = null;
  if (options.vllmLog !== undefined && logRead !== null) {
    if ('error' in logRead) {
      logStatus = sourceStatus(options.vllmLog, sourceError('LOG_UNREADABLE', `${options.vllmLog}: ${logRead.error.message}`));
    } else {
      const parsed = logRead.parsed;
      parsed.byPid = rekeyLogPids(parsed.byPid, await innermostPids(pids, procRoot));
      if (parsed.matchedLines === 0) {
        logStatus = sourceStatus(options.vllmLog, sourceError('LOG_NO_KNOWN_LINES', `${options.vllmLog} has none of the vLLM startup lines gpu-layers knows (is it a vLLM log?)`));
      } else {
        log = { path: options.vllmLog, parsed };
        logStatus = sourceStatus(options.vllmLog, null);
      }
    }
  }

  let geometry: FrameworkInputs['geometry'] = null;
  let hfStatus: SourceStatus | null = null;
  if (options.hfConfig !== undefined && hfText !== null) {
    if ('error' in hfText && hfText.error instanceof FileRefusedError) {
      hfStatus = sourceStatus(options.hfConfig, sourceError('HF_CONFIG_INVALID', `${hfText.error.message}: not a model config.json`));
    } else if ('error' in hfText) {
      hfStatus = sourceStatus(options.hfConfig, sourceError('HF_CONFIG_UNREADABLE', `${options.hfConfig}: ${hfText.error.message}`));
    } else {
      try {
        const config: unknown = JSON.parse(hfText.text);
        geometry = (tensorParallel, blockSize, cacheDtype) => kvGeometry(config, { tensorParallel, blockSize, cacheDtype });
        const check = geometry(1, 16, 'auto');
        hfStatus = sourceStatus(options.hfConfig, check.ok ? null : sourceError(check.code, `${options.hfConfig}: ${check.message}`));
        if (!check.ok) geometry = null;
      } catch (error) {
        hfStatus = sourceStatus(options.hfConfig, sourceError('HF_CONFIG_INVALID', `${options.hfConfig} is not JSON: ${(error as Error).message}`));
      }
    }
  }

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
