/**
 * A whole GPU host made of files, as gpu-layers reads a real one: the scenario the mock NVML and
 * CUDA libraries read (named in this process's environment, where they look it up), a /proc
 * stand-in, a cgroup v2 tree (the containers' memory), the companion files (with malloc's figures
 * where given), vLLM servers' /metrics on loopback (with their counters where given), a startup
 * log and the calibration cache. `set()` rewrites all of it for the next moment;
 * `monitorOptions()` points a monitor at it. The demo, the incident recorder and the tests build their hosts with it, and an
 * agent built on gpu-layers can test itself against one (`gpu-layers/mock`).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import type { MonitorOptions } from '../monitor/monitor.js';
import { calibrationCacheFile } from '../sources/calibration-cache.js';
import type { PodResources } from '../sources/kubelet-pod-resources.js';
import { startFakePodResourcesServer, type FakePodResourcesServer } from './fake-kubelet-pod-resources.js';
import { serveMetrics, vllmMetricsText, type FakeVllmServer, type MetricsServer } from './fake-vllm-server.js';
import { writeCalibrationFor, writeCgroupStandIn, writeCompanionFiles, writeProcStandIn } from './host-files.js';
import { mockLibraries } from './mock-libraries.js';
import type { Scenario } from './scenario-schema.js';
import { writeScenario } from './scenario-text.js';

/** PyTorch's caching allocator in a fake process, as its companion file reports it. */
export interface FakeAllocator {
  reservedMiB: number;
  allocatedMiB: number;
  privatePoolMiB: number;
  inactiveSplitMiB: number;
  retries: number;
  ooms?: number;
  /** The largest free block (only when the companion reports segments). */
  largestFreeMiB?: number;
}

/**
 * glibc malloc in a fake process, as the companion's `host` part reports it (mallinfo2: every
 * arena, the main one and the threads', plus the chunks mmapped one by one).
 */
export interface FakeMalloc {
  /** Allocated and not freed: arena chunks in use and the mmapped chunks (uordblks + hblkhd). */
  inUseMiB: number;
  /** Free inside the arenas (fordblks): held by malloc, not by the program. */
  freeMiB: number;
  /** In chunks mmapped one by one (hblkhd): part of inUseMiB. */
  mmappedMiB: number;
  /** How many such chunks (hblks; default one per 8 MiB, at least one when mmappedMiB > 0). */
  mmappedChunks?: number;
  /** Arenas, the main one included (default 1; null: not counted, as on a slow malloc_info()). */
  arenas?: number | null;
  /** The free top of the main arena that malloc_trim() could give back (keepcost; default a tenth of freeMiB). */
  releasableMiB?: number;
}

/** Python's allocator in a fake process, as the companion's `host` part reports it. */
export interface FakePython {
  /** sys.getallocatedblocks(). */
  allocatedBlocks: number;
  /** tracemalloc's traced bytes, only for a program that started tracemalloc (default null). */
  tracedMiB?: number | null;
}

/**
 * The memory cgroup (v2) a fake process is in, at the path its /proc/<pid>/cgroup names: the files
 * the kubelet and the OOM killer go by. The processes of one cgroup share its folder: give them
 * the same figures (the first process that gives any is the one written).
 */
export interface FakeCgroupMemory {
  /** memory.current: every page charged to the cgroup (its processes' anonymous memory, page cache, kernel). */
  usageMiB: number;
  /** memory.max; null writes "max" (no limit). */
  limitMiB: number | null;
  /** memory.stat's inactive_file: page cache the kernel reclaims first, not in the working set (default 0). */
  inactiveFileMiB?: number;
  /** memory.events: times the cgroup hit its limit and the OOM killer was invoked (default 0) ... */
  oomEvents?: number;
  /** ... and processes it killed (default 0). */
  oomKills?: number;
}

/**
 * A fake process's host memory: the /proc figures (status, smaps), its container, and what the
 * companion reads in-process. Every field after `container` is optional: without them smaps'
 * split of the anonymous memory is derived, the companion file has no `host` part and no cgroup
 * folder is laid out.
 */
export interface FakeProcessHost {
  anonMiB: number;
  fileMiB: number;
  shmemMiB: number;
  driverMappedMiB: number;
  /** The 64-hex container id its cgroup path names; null outside a container. */
  container: string | null;
  /** The Kubernetes pod UID its cgroup path names (only with a container). */
  podUid?: string;
  /**
   * Of anonMiB, the brk heap ([heap] in smaps: malloc's main arena). Default: malloc's arenas
   * where malloc is given (half of them with more than one arena: the threads' are mappings),
   * else a quarter of anonMiB; never more than anonMiB leaves.
   */
  heapMiB?: number;
  /** Of anonMiB, the main thread's stack ([stack]; default 132 kB). */
  stackMiB?: number;
  /**
   * How many unnamed anonymous mappings share the rest of anonMiB (malloc's thread arenas and
   * mmapped chunks, pymalloc arenas, other libraries' mmaps). Default: one, plus malloc's thread
   * arenas and mmapped chunks where malloc is given.
   */
  anonMappings?: number;
  /**
   * glibc malloc's figures, written as the companion file's `host` part only when given: without
   * them the process's companion stands for one older than the host figures.
   */
  malloc?: FakeMalloc;
  /** Python's allocator, in the `host` part beside malloc (null there when not given). */
  python?: FakePython;
  /** Its memory cgroup's files; without them no cgroup folder is laid out for it. */
  cgroup?: FakeCgroupMemory;
}

/** A process of the fake host: its /proc entry, and its companion file when it has an allocator. */
export interface FakeProcess {
  pid: number;
  ppid: number;
  command: string;
  startTicks: number;
  /** The GPU (scenario device index) it holds memory on, or null for a process without one. */
  gpu: number | null;
  /** NVML's figure: the allocator's reserved bytes plus what lies outside it. */
  driverMiB: number;
  allocator: FakeAllocator | null;
  host: FakeProcessHost;
}

export interface FakeHostState {
  /** What the mock NVML and CUDA libraries report; devices with contextBytes are calibrated. */
  scenario: Scenario;
  processes?: readonly FakeProcess[];
  servers?: readonly FakeVllmServer[];
  /** A vLLM startup log's text. */
  vllmLog?: string;
  /** The kubelet's device assignments, served on `podResourcesSocket` (from the first set() that gives them). */
  pods?: readonly PodResources[];
  /** The moment this state stands for (default now): companion files are written just before it. */
  nowMs?: number;
}

export interface FakeHostOptions {
  /** Have the mock libraries log every call to `traceFile` (GPU_LAYERS_MOCK_TRACE). */
  trace?: boolean;
  /** What CUDA_MODULE_LOADING the host's workloads run with (the calibration's key; default LAZY). */
  moduleLoading?: string;
}

const NAMES = ['GPU_LAYERS_MOCK_SCENARIO', 'GPU_LAYERS_MOCK_TRACE'] as const;

export class FakeHost {
  readonly dir: string;
  readonly scenarioFile: string;
  readonly traceFile: string;
  readonly procRoot: string;
  /** The cgroup filesystem stand-in (v2): the monitor's cgroupRoot. */
  readonly cgroupRoot: string;
  readonly statsDir: string;
  readonly vllmLogFile: string;
  /** The fake kubelet's pod-resources socket (served once a state gives `pods`). */
  readonly podResourcesSocket: string;
  /** The environment gpu-layers reads on this host (its calibration cache's folder). */
  readonly env: Record<string, string>;
  readonly #saved = new Map<string, string | undefined>();
  readonly #servers: MetricsServer[] = [];
  #kubelet: FakePodResourcesServer | null = null;
  #nowMs: number | null = null;
  #hasLog = false;
  #closed = false;

  /** Makes the host's folder and points the mock libraries at its scenario (written by set()). */
  constructor(options: FakeHostOptions = {}) {
    this.dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-fake-host-'));
    this.scenarioFile = path.join(this.dir, 'host.scenario');
    this.traceFile = path.join(this.dir, 'trace.log');
    this.procRoot = path.join(this.dir, 'proc');
    this.cgroupRoot = path.join(this.dir, 'cgroup');
    this.statsDir = path.join(this.dir, 'stats');
    this.vllmLogFile = path.join(this.dir, 'vllm.log');
    this.podResourcesSocket = path.join(this.dir, 'pod-resources', 'kubelet.sock');
    this.env = { GPU_LAYERS_CACHE_DIR: path.join(this.dir, 'cache'), CUDA_MODULE_LOADING: options.moduleLoading ?? 'LAZY' };
    for (const name of NAMES) this.#saved.set(name, process.env[name]);
    // The mock libraries read these with getenv(), so they live in the real environment.
    process.env.GPU_LAYERS_MOCK_SCENARIO = this.scenarioFile;
    if (options.trace === true) process.env.GPU_LAYERS_MOCK_TRACE = this.traceFile;
  }

  /** Rewrites the NVML scenario alone (atomically: a sample in flight sees the old or the new). */
  writeScenario(scenario: Scenario): void {
    writeScenario(this.scenarioFile, scenario);
  }

  /** Lays out every file of `state`, and serves each server's /metrics (started at the first call). */
  async set(state: FakeHostState): Promise<void> {
    const servers = state.servers ?? [];
    while (this.#servers.length < servers.length) this.#servers.push(await serveMetrics(''));
    while (this.#servers.length > servers.length) await this.#servers.pop()!.close();
    servers.forEach((server, i) => this.#servers[i]!.set(vllmMetricsText(server)));
    if (state.pods !== undefined) {
      this.#kubelet ??= await startFakePodResourcesServer(this.podResourcesSocket);
      this.#kubelet.set(state.pods);
    }
    this.#nowMs = state.nowMs ?? null;
    const processes = state.processes ?? [];
    writeProcStandIn(this.procRoot, processes, new Map(servers.map((s, i) => [s.listenerPid, this.#servers[i]!.port])));
    writeCgroupStandIn(this.cgroupRoot, processes);
    writeCompanionFiles(this.statsDir, processes, state.scenario.devices.map((d) => d.uuid ?? ''), state.nowMs ?? Date.now());
    writeCalibrationFor(calibrationCacheFile(this.env), state.scenario, this.env.CUDA_MODULE_LOADING!);
    if (state.vllmLog !== undefined) writeFileSync(this.vllmLogFile, state.vllmLog);
    this.#hasLog ||= state.vllmLog !== undefined;
    this.writeScenario(state.scenario);
  }

  /** The base URLs of the vLLM servers, in the order set() was given them. */
  get vllmUrls(): string[] {
    return this.#servers.map((s) => s.url);
  }

  /** A monitor reading this host: the mock libraries, and every source set() laid out. */
  monitorOptions(): MonitorOptions {
    const libraries = mockLibraries();
    return {
      probe: { nvmlLibrary: libraries.nvml, cudaLibrary: libraries.cuda },
      layers: {
        env: this.env,
        procRoot: this.procRoot,
        cgroupRoot: this.cgroupRoot,
        statsDir: this.statsDir,
        vllm: this.vllmUrls,
        ...(this.#hasLog ? { vllmLog: this.vllmLogFile } : {}),
        // Its own kubelet, or none: never the machine's.
        podResourcesSocket: this.#kubelet === null ? null : this.podResourcesSocket,
        now: () => this.#nowMs ?? Date.now(),
      },
    };
  }

  /** The mock libraries' call trace, one call a line (with `trace: true`). */
  trace(): string[] {
    try {
      return readFileSync(this.traceFile, 'utf8').split('\n').filter((line) => line !== '');
    } catch {
      return [];
    }
  }

  /** Stops the servers, gives the environment back and removes the host's folder. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    // The environment and the folder first, synchronously: a caller that does not wait may set
    // up the next host at once.
    for (const [name, value] of this.#saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
    rmSync(this.dir, { recursive: true, force: true });
    await Promise.all(this.#servers.splice(0).map((s) => s.close()));
    await this.#kubelet?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
