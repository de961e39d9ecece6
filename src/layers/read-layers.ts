/**
 * Reads every outside source for the processes of one driver sample, in parallel, each on its
 * own (a failing source leaves the others and says why), then joins them: the companion files,
 * /proc, the vLLM servers' /metrics and startup log, a Hugging Face config and the calibration
 * cache. The I/O half of the layers; join.ts is the pure half.
 */
import { readFile, readdir, stat } from 'node:fs/promises';
import { hostname, networkInterfaces } from 'node:os';

import { calibrationCacheFile, moduleLoadingOf, readCalibrationCache } from '../calibration/calibration-cache.js';
import type { FieldError, Sample } from '../sample/schema.js';
import { missingCompanion, readCompanion, type CompanionResult } from '../sources/companion.js';
import { invisibleHostLayer, readHostLayer } from '../sources/host-layer.js';
import { kvGeometry } from '../sources/hf-config.js';
import { ancestry, listeningPids, readCommandLine, readParents } from '../sources/process-tree.js';
import { parseVllmLog } from '../sources/vllm-log.js';
import { fetchVllmMetrics, metricsUrl } from '../sources/vllm-metrics.js';
import { joinLayers } from './join.js';
import type { HostLayer, LayeredSample, SourceStatus } from './schema.js';
import { attributeFramework, type FrameworkInputs, type FrameworkResult, type GpuProcessInfo, type VllmEndpoint } from './vllm-attribution.js';

export interface LayerOptions {
  /** Where the companion writes (default $GPU_LAYERS_STATS_DIR; null: no allocator layer). */
  statsDir?: string | null;
  /** vLLM servers: base URLs or /metrics URLs. */
  vllm?: readonly string[];
  /** A vLLM startup log. */
  vllmLog?: string;
  /** The served model's Hugging Face config.json (KV bytes per block). */
  hfConfig?: string;
  /** Deadline for each /metrics request (default 2000 ms). */
  vllmTimeoutMs?: number;
  /** Read the host layer from /proc (default true). */
  host?: boolean;
  procRoot?: string;
  env?: Record<string, string | undefined>;
  now?: () => number;
}

function reason(code: string, message: string): FieldError {
  return { code, nvmlReturn: null, message };
}

function status(location: string | null, error: FieldError | null): SourceStatus {
  return { location, ok: location !== null && error === null, error };
}

function pidsOf(sample: Sample): number[] {
  const pids = new Set<number>();
  for (const device of sample.devices) {
    for (const p of device.processes ?? []) pids.add(p.pid);
    for (const mig of device.mig?.devices ?? []) for (const p of mig.processes ?? []) pids.add(p.pid);
  }
  return [...pids];
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

async function readFramework(
  pids: number[],
  options: LayerOptions,
  procRoot: string,
): Promise<{ results: Map<number, FrameworkResult>; metrics: SourceStatus[]; log: SourceStatus | null; hf: SourceStatus | null }> {
  const endpoints = options.vllm ?? [];
  if (endpoints.length === 0 && options.vllmLog === undefined) {
    // No vLLM source: nothing to read, and no process tree to walk.
    const hf = options.hfConfig === undefined ? null : status(options.hfConfig, reason('INPUT_MISSING', 'a model config is used with a vLLM source (--vllm or --vllm-log)'));
    return { results: attributeFramework([], { endpoints: [], log: null, geometry: null }), metrics: [], log: null, hf };
  }
  const local = localAddresses();
  const [parents, readEndpoints, logText, hfText] = await Promise.all([
    endpoints.length > 0 || options.vllmLog !== undefined ? readParents(procRoot) : Promise.resolve(new Map<number, number>()),
    Promise.all(endpoints.map((e) => readEndpoint(e, options.vllmTimeoutMs ?? 2000, procRoot, local))),
    options.vllmLog === undefined ? null : readFile(options.vllmLog, 'utf8').then((text) => ({ text }), (error: Error) => ({ error })),
    options.hfConfig === undefined ? null : readFile(options.hfConfig, 'utf8').then((text) => ({ text }), (error: Error) => ({ error })),
  ]);

  let log: FrameworkInputs['log'] = null;
  let logStatus: SourceStatus | null = null;
  if (options.vllmLog !== undefined && logText !== null) {
    if ('error' in logText) {
      logStatus = status(options.vllmLog, reason('LOG_UNREADABLE', `${options.vllmLog}: ${logText.error.message}`));
    } else {
      const parsed = parseVllmLog(logText.text);
      if (parsed.matchedLines === 0) {
        logStatus = status(options.vllmLog, reason('LOG_NO_KNOWN_LINES', `${options.vllmLog} has none of the vLLM startup lines gpu-layers knows (is it a vLLM log?)`));
      } else {
        log = { path: options.vllmLog, parsed };
        logStatus = status(options.vllmLog, null);
      }
    }
  }

  let geometry: FrameworkInputs['geometry'] = null;
  let hfStatus: SourceStatus | null = null;
  if (options.hfConfig !== undefined && hfText !== null) {
    let json: unknown;
    if ('error' in hfText) {
      hfStatus = status(options.hfConfig, reason('HF_CONFIG_UNREADABLE', `${options.hfConfig}: ${hfText.error.message}`));
    } else {
      try {
        json = JSON.parse(hfText.text);
        const config = json;
        geometry = (tensorParallel, blockSize, cacheDtype) => kvGeometry(config, { tensorParallel, blockSize, cacheDtype });
        const check = geometry(1, 16, 'auto');
        hfStatus = status(options.hfConfig, check.ok ? null : reason(check.code, `${options.hfConfig}: ${check.message}`));
        if (!check.ok) geometry = null;
      } catch (error) {
        hfStatus = status(options.hfConfig, reason('HF_CONFIG_INVALID', `${options.hfConfig} is not JSON: ${(error as Error).message}`));
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
  const metrics = readEndpoints.map((e) => status(e.metrics.url, e.metrics.ok ? null : e.metrics.error));
  return { results, metrics, log: logStatus, hf: hfStatus };
}

/** The names in a folder, or an empty set when it cannot be listed. */
async function listing(directory: string): Promise<Set<string>> {
  return new Set(await readdir(directory).catch(() => [] as string[]));
}

async function readCompanions(directory: string, pids: number[], host: ReadonlyMap<number, HostLayer> | null, now: number) {
  const results = new Map<number, CompanionResult>();
  // One listing instead of a failing open per GPU process without a companion.
  const present = await listing(directory);
  await Promise.all(
    pids.map(async (pid) => {
      const startTime = host?.get(pid)?.startTimeTicks ?? null;
      results.set(pid, present.has(`${pid}.json`) ? await readCompanion(directory, pid, startTime, now) : missingCompanion(directory, pid));
    }),
  );
  return results;
}

export async function readLayers(sample: Sample, options: LayerOptions = {}): Promise<LayeredSample> {
  const env = options.env ?? process.env;
  const procRoot = options.procRoot ?? '/proc';
  const now = (options.now ?? Date.now)();
  const pids = pidsOf(sample);
  const statsDir = options.statsDir === undefined ? env.GPU_LAYERS_STATS_DIR || null : options.statsDir;

  // One listing of /proc: NVML's host pids are often not visible here (a container).
  const hostPromise =
    options.host === false
      ? Promise.resolve(null)
      : listing(procRoot).then((visible) =>
          Promise.all(pids.map(async (pid) => [pid, visible.has(String(pid)) ? await readHostLayer(pid, procRoot) : invisibleHostLayer(pid)] as const)),
        ).then((entries) => new Map(entries));
  const [host, framework, statsDirError] = await Promise.all([
    hostPromise,
    readFramework(pids, options, procRoot),
    statsDir === null
      ? null
      : stat(statsDir).then(
          (s) => (s.isDirectory() ? null : reason('COMPANION_DIR_INVALID', `${statsDir} is not a folder`)),
          () => reason('COMPANION_DIR_MISSING', `no folder ${statsDir}: no companion has written there yet (see \`gpu-layers companion\`)`),
        ),
  ]);
  const companion = statsDir === null ? null : await readCompanions(statsDir, pids, host, now);

  const cacheFile = calibrationCacheFile(env);
  const cache = readCalibrationCache(cacheFile);
  const calibrationError = cache.ok ? null : reason(cache.missing ? 'NOT_CALIBRATED' : 'CALIBRATION_CACHE_INVALID', cache.message);

  return joinLayers(sample, {
    host,
    companion,
    framework: framework.results,
    calibration: { entries: cache.ok ? cache.entries : [], moduleLoading: moduleLoadingOf(env), error: calibrationError },
    sources: {
      companion: status(statsDir, statsDir === null ? reason('NOT_REQUESTED', 'no stats folder (GPU_LAYERS_STATS_DIR or --stats-dir)') : statsDirError),
      vllmMetrics: framework.metrics,
      vllmLog: framework.log,
      hfConfig: framework.hf,
      calibration: status(cacheFile, calibrationError),
    },
  });
}
