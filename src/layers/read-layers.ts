/**
 * Reads every outside source for the processes of one driver sample, in parallel, each on its
 * own (a failing source leaves the others and says why), then joins them: the companion files,
 * /proc, the calibration cache, the kubelet's pod-resources socket and, through
 * read-framework.ts, the vLLM sources. The I/O half of the layers; join.ts is the pure half.
 */
import { readdir, stat } from 'node:fs/promises';

import { GpuLayersError } from '../errors.js';
import { calibrationCacheFile, moduleLoadingOf, readCalibrationCache } from '../sources/calibration-cache.js';
import { sourceError } from '../sample/field-errors.js';
import type { Sample } from '../sample/schema.js';
import { missingCompanion, readCompanion, type CompanionResult } from '../sources/companion.js';
import { DEFAULT_POD_RESOURCES_SOCKET, isSocket, PodResourcesReader, type PodResources } from '../sources/kubelet-pod-resources.js';
import { invisibleProcessHost, readProcessHost, type CgroupReadings, type ProcessHostReading } from '../sources/process-host.js';
import { readProcessIdentity, type ProcessIdentity } from '../sources/process-identity.js';
import type { VllmLogFollower } from '../sources/vllm-log.js';
import type { LoadState } from './request-load.js';
import { hostLayerOf } from './host-layer.js';
import { joinLayers } from './join.js';
import { kubernetesIdentities, type KubernetesIdentityResult } from './kubernetes-identity.js';
import type { FrameworkReading } from './read-framework.js';
import type { LayeredSample, SourceStatus } from './schema.js';
import { sourceStatus } from './source-status.js';

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
  /** Where the cgroup filesystem is mounted (default /sys/fs/cgroup). */
  cgroupRoot?: string;
  /**
   * The kubelet's pod-resources socket, for each process's namespace, pod and container.
   * Default: /var/lib/kubelet/pod-resources/kubelet.sock where a socket is there (a Kubernetes
   * node, or its folder mounted at the same path), else none; null: not read.
   */
  podResourcesSocket?: string | null;
  env?: Record<string, string | undefined>;
  now?: () => number;
}

function pidsOf(sample: Sample): number[] {
  const pids = new Set<number>();
  for (const device of sample.devices) {
    for (const p of device.processes ?? []) pids.add(p.pid);
    for (const mig of device.mig?.devices ?? []) for (const p of mig.processes ?? []) pids.add(p.pid);
  }
  return [...pids];
}

/**
 * The framework sources, when any vLLM source is given. Without one there is nothing to read and
 * no process tree to walk, and the parsers (the Prometheus one among them) are not even loaded.
 */
async function readFrameworkSources(pids: number[], options: LayerOptions, procRoot: string, readers: LayerReaders): Promise<FrameworkReading> {
  if ((options.vllm ?? []).length === 0 && options.vllmLog === undefined) {
    const hf = options.hfConfig === undefined ? null : sourceStatus(options.hfConfig, sourceError('INPUT_MISSING', 'a model config is used with a vLLM source (--vllm or --vllm-log)'));
    return { results: new Map(), metrics: [], log: null, hf };
  }
  const { readFramework } = await import('./read-framework.js');
  return readFramework(pids, options, procRoot, readers);
}

/** The names in a folder, or an empty set when it cannot be listed. */
async function listing(directory: string): Promise<Set<string>> {
  return new Set(await readdir(directory).catch(() => [] as string[]));
}

/** Who each process is, from the host layer's reading or, without one, from two small reads. */
function identityOf(pid: number, host: ReadonlyMap<number, ProcessHostReading> | null, procRoot: string): ProcessIdentity | Promise<ProcessIdentity> {
  return host?.get(pid) ?? readProcessIdentity(pid, procRoot);
}

async function readCompanions(directory: string, pids: number[], host: ReadonlyMap<number, ProcessHostReading> | null, procRoot: string, now: number) {
  const results = new Map<number, CompanionResult>();
  // One listing instead of a failing open per GPU process without a companion.
  const present = await listing(directory);
  await Promise.all(
    pids.map(async (pid) => {
      if (present.size === 0) return results.set(pid, missingCompanion(directory, pid));
      const identity = await identityOf(pid, host, procRoot);
      // In a container the companion names its file by the pid it sees there (the innermost
      // NSpid entry); the start time, counted from boot in every namespace, still tells it apart.
      const inner = identity.nspid?.at(-1);
      const name = present.has(`${pid}.json`) ? pid : inner !== undefined && present.has(`${inner}.json`) ? inner : null;
      results.set(pid, name === null ? missingCompanion(directory, pid) : await readCompanion(directory, name, identity, now));
    }),
  );
  return results;
}

/**
 * What a monitor keeps between samples so that each reads only what changed: the vLLM log's
 * follower, made at the first read, parses only the bytes appended since. Without it (a fresh
 * object each call) the log is read whole.
 */
export interface LayerReaders {
  vllmLog?: VllmLogFollower;
  /** Each vLLM server's counters at the last sample, by /metrics URL: rates are taken between samples. */
  requestLoads?: Map<string, LoadState>;
  /** The kubelet's pod list, listed again only after a few seconds. */
  podResources?: PodResourcesReader;
}

/**
 * The kubelet's pods, where its socket is asked for or (the default) present. Used by default
 * where the socket exists because it is root's, on a path only root can write (a Kubernetes node's
 * own), and its List is read-only: naming the pods costs nothing to set up where they exist. A
 * socket asked for by name that is missing is an error; the default one missing is not.
 */
async function readPodResources(options: LayerOptions, readers: LayerReaders): Promise<{ status: SourceStatus; pods: PodResources[] | null }> {
  if (options.podResourcesSocket === null) return { status: sourceStatus(null, sourceError('NOT_REQUESTED', 'the kubelet\'s pod-resources socket is not read (turned off)')), pods: null };
  const socket = options.podResourcesSocket ?? DEFAULT_POD_RESOURCES_SOCKET;
  // net.connect() would take a number for a TCP port: only a path is a socket here.
  if (typeof socket !== 'string' || socket === '') throw new GpuLayersError('INVALID_OPTIONS', `podResourcesSocket must be a socket's path or null, not ${JSON.stringify(socket)}`);
  if (options.podResourcesSocket === undefined && !(await isSocket(socket))) {
    return { status: sourceStatus(null, sourceError('NOT_REQUESTED', `no kubelet pod-resources socket at ${socket}: not a Kubernetes node, or its folder is not mounted here (--pod-resources-socket PATH)`)), pods: null };
  }
  if (readers.podResources?.socket !== socket) readers.podResources = new PodResourcesReader(socket);
  const result = await readers.podResources.read();
  return result.ok ? { status: sourceStatus(socket, null), pods: result.pods } : { status: sourceStatus(socket, result.error), pods: null };
}

export async function readLayers(sample: Sample, options: LayerOptions = {}, readers: LayerReaders = {}): Promise<LayeredSample> {
  const env = options.env ?? process.env;
  const procRoot = options.procRoot ?? '/proc';
  const now = (options.now ?? Date.now)();
  const pids = pidsOf(sample);
  const statsDir = options.statsDir === undefined ? env.GPU_LAYERS_STATS_DIR || null : options.statsDir;

  // One listing of /proc: NVML's host pids are often not visible here (a container).
  const cgroups: CgroupReadings = new Map();
  const hostPromise =
    options.host === false
      ? Promise.resolve(null)
      : listing(procRoot).then((visible) =>
          Promise.all(
            pids.map(async (pid) => [pid, visible.has(String(pid)) ? await readProcessHost(pid, procRoot, options.cgroupRoot, cgroups) : invisibleProcessHost(pid)] as const),
          ),
        ).then((entries) => new Map(entries));
  const [host, framework, statsDirError, podResources] = await Promise.all([
    hostPromise,
    readFrameworkSources(pids, options, procRoot, readers),
    statsDir === null
      ? null
      : stat(statsDir).then(
          (s) => (s.isDirectory() ? null : sourceError('COMPANION_DIR_INVALID', `${statsDir} is not a folder`)),
          () => sourceError('COMPANION_DIR_MISSING', `no folder ${statsDir}: no companion has written there yet (see \`gpu-layers companion\`)`),
        ),
    readPodResources(options, readers),
  ]);
  const companion = statsDir === null ? null : await readCompanions(statsDir, pids, host, procRoot, now);

  const cacheFile = calibrationCacheFile(env);
  const cache = await readCalibrationCache(cacheFile);
  const calibrationError = cache.ok ? null : sourceError(cache.missing ? 'NOT_CALIBRATED' : 'CALIBRATION_CACHE_INVALID', cache.message);

  const hostLayers = host === null ? null : new Map([...host].map(([pid, reading]) => [pid, hostLayerOf(reading)]));
  let kubernetes: Map<number, KubernetesIdentityResult> | undefined;
  if (podResources.pods !== null) kubernetes = kubernetesIdentities(sample, hostLayers, podResources.pods);
  else if (podResources.status.location !== null && podResources.status.error !== null) {
    const error = podResources.status.error;
    kubernetes = new Map(pids.map((pid) => [pid, { identity: null, error }]));
  }

  return joinLayers(sample, {
    host: hostLayers,
    companion,
    framework: framework.results,
    ...(kubernetes === undefined ? {} : { kubernetes }),
    calibration: { entries: cache.ok ? cache.entries : [], moduleLoading: moduleLoadingOf(env), error: calibrationError },
    sources: {
      companion: sourceStatus(statsDir, statsDir === null ? sourceError('NOT_REQUESTED', 'no stats folder (GPU_LAYERS_STATS_DIR or --stats-dir)') : statsDirError),
      vllmMetrics: framework.metrics,
      vllmLog: framework.log,
      hfConfig: framework.hf,
      calibration: sourceStatus(cacheFile, calibrationError),
      podResources: podResources.status,
    },
  });
}
