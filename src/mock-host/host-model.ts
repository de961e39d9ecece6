/**
 * A model of a vLLM host over time, from which the diagnosis's evaluation set is drawn. It is
 * written from how such a host behaves, not from the rules: requests arrive as a Poisson process
 * whose rate follows a diurnal curve with quiet nights and are served by an infinite-server queue
 * (M/M/inf, capped at the engine's batch); each engine's workers start up the way vLLM's do
 * (CUDA context, weights, the profile run, the KV arena, graph capture) and then hold memory that
 * follows the load (activations within the cached pool, KV usage); effects add a failure pattern
 * or a harmless look-alike to an engine's first worker. The host is simulated in 5-second steps
 * whatever the sampling interval, so the same host recorded every 5 s and every 60 s is the same
 * host. The recorder drops samples and pauses, the companion goes stale, scrapes fail. The output
 * is what `gpu-layers record` would have written: layered samples, joined by the product's join.
 */
import { joinLayers } from '../layers/join.js';
import { nextRequestLoad, type LoadState } from '../layers/request-load.js';
import type { ContainerMemory, FrameworkLayer, HostLayer, LayeredSample, ProcessExit, RequestLoad, VllmCountersLayer } from '../layers/schema.js';
import type { FrameworkResult } from '../layers/vllm-attribution.js';
import { recordingHeaderFor, type RecordingHeader } from '../recording/recording-header.js';
import { sourceError } from '../sample/field-errors.js';
import { SAMPLE_SCHEMA_VERSION, type Device, type GpuProcess, type MigDevice, type Sample } from '../sample/schema.js';
import type { CalibrationEntry } from '../sources/calibration-cache.js';
import type { CompanionResult } from '../sources/companion.js';
import { seededRandom, type SeededRandom } from './seeded-random.js';

const MiB = 1024 * 1024;
const STEP_S = 5;
const HOUR_S = 3600;
const CLOCK_TICKS = 100;
const DRIVER_VERSION = '550.127.05';
const CONTEXT_MIB = 532;
const RESERVED_MIB = 544;

/** A pattern (or a look-alike) on an engine's first worker; hours count from the window's start. */
export type Effect =
  /**
   * New shapes captured as CUDA graphs outside the allocator, as requests bring them; stops at
   * `toHour`. Each capture holds `captureMiB` (default 16 to 64 MiB; a small model's, a few).
   */
  | { kind: 'graph-creep'; fromHour: number; toHour?: number; mibPerHour: number; captureMiB?: [number, number] }
  /** At low load, prefill/free cycles leave free memory split between live blocks; the pool grows. */
  | { kind: 'fragmentation'; fromHour: number; mibPerHour: number }
  /** The Python heap (anonymous RSS) grows steadily. */
  | { kind: 'heap-leak'; fromHour: number; mibPerHour: number }
  /** Resident memory outside malloc grows: file pages, shmem, driver mappings, or anonymous
   * mappings malloc does not hold (a library's registration cache, pinned buffers). */
  | { kind: 'rss-growth'; fromHour: number; toHour?: number; mibPerHour: number; part: 'file' | 'shmem' | 'driverMapped' | 'anonMappings' }
  /** A library initialised by the first requests (NIXL, NCCL, cuBLAS): one rise over `rampSeconds`. */
  | { kind: 'lazy-init'; mib: number; rampSeconds: number }
  /** Device memory rises while no request runs. */
  | { kind: 'idle-growth'; mibPerIdleHour: number }
  /** Each finished request leaves tensors behind. */
  | { kind: 'tensor-leak'; fromHour: number; kibPerRequest: number }
  /** One rise mid-serving (a LoRA adapter loaded), outside the allocator or as tensors. */
  | { kind: 'step'; atHour: number; mib: number; where: 'outside' | 'allocated' }
  /** The allocator's cache grows and is returned by empty_cache() every period. */
  | { kind: 'sawtooth'; periodMinutes: number; mib: number }
  /** The allocator keeps what the busiest moment so far needed. */
  | { kind: 'cache-warmup'; mib: number }
  /** The heap goes up and down with batches of work (garbage collected). */
  | { kind: 'heap-churn'; mib: number; periodMinutes: number }
  /** Free memory split between live blocks comes and goes with the load (fragments reused). */
  | { kind: 'split-churn'; mib: number }
  /** More jitter in the driver's figure. */
  | { kind: 'jitter'; mib: number }
  /** When the engine's container reaches its memory limit, the kernel's OOM killer ends its
   * workers and the engine restarts (without this effect the limit is never enforced). */
  | { kind: 'oom-kill' };

export interface EngineSpec {
  name: string;
  model: string;
  /** The GPU of each worker (tensor-parallel rank order). */
  gpus: number[];
  /** When it starts (its start-up in the recording); absent: serving before the window. */
  startHour?: number;
  /** When it restarts: new pids, the start-up again. */
  restartHours?: number[];
  weightsMiB: number;
  kvMiB: number;
  /** The memory limit of the engine's container (absent: no limit). */
  containerLimitMiB?: number;
  /** Its share of the host's requests (default 1). */
  loadShare?: number;
  effects?: Effect[];
}

export interface HostModelSpec {
  name: string;
  seed: number;
  startMs: number;
  hours: number;
  /** A multiple of 5. */
  intervalSeconds: number;
  gpus: number;
  /** Each GPU's memory, or with `mig` the memory of the one MIG slice each GPU's worker runs in. */
  gpuMiB: number;
  mig?: boolean;
  engines: EngineSpec[];
  traffic: {
    peakRequestsPerSecond: number;
    /** The night's rate as a share of the peak (0: nights with no request at all). */
    nightShare: number;
    meanServiceSeconds: number;
    /** Requests an engine runs at once; the rest wait. */
    maxBatch?: number;
    /** Hours with no traffic at all from the window's start (a server nobody uses yet). */
    quietHours?: number;
  };
  /** The companion runs in the workers (default true). */
  companion?: boolean;
  /** Stretches (hours) in which the companion hung: its file goes stale. */
  staleCompanion?: [number, number][];
  /** Share of samples whose /metrics scrape failed. */
  failedScrapeShare?: number;
  recorder?: { dropShare?: number; pauses?: [number, number][] };
}

interface Worker {
  engine: EngineSpec;
  rank: number;
  pid: number;
  startS: number;
  startTicks: number;
  /** Seconds of the window at which it became ready to serve (null: not yet). */
  readyS: number | null;
  /** MiB by part. */
  outside: number;
  allocated: number;
  reserved: number;
  inactiveSplit: number;
  retries: number;
  /** All anonymous memory; of it, what malloc does not hold (pymalloc arenas, libraries' mmaps)
   * and what malloc holds free in its arenas. The rest is malloc's memory in use. */
  anon: number;
  anonOutside: number;
  mallocFree: number;
  /** What heap churn adds to the heap at this moment. */
  churn: number;
  /** What split churn adds to the inactive split bytes at this moment. */
  splitChurn: number;
  file: number;
  shmem: number;
  driverMapped: number;
  /** Effect state. */
  pending: number;
  firstRequestS: number | null;
  leaked: number;
  cacheMiB: number;
  stepDone: Set<number>;
}

interface EngineState {
  spec: EngineSpec;
  index: number;
  incarnation: number;
  listenerPid: number;
  workers: Worker[];
  running: number;
  waiting: number;
  /** vLLM's counters since this incarnation started (a restart resets them). */
  finished: number;
  promptTokens: number;
  generationTokens: number;
  /** What the recorder's load tracking carried from its last sample of this engine. */
  load: LoadState | null;
  /** The engine's container: cgroup path, and the OOM kills counted in it. */
  cgroupPath: string;
  oomKills: number;
}

/** Where a label's finding is expected: the device and pid of an engine's first worker at a moment. */
export interface ModelSubject {
  deviceIndex: number;
  pid: number;
}

export interface ModelRecording {
  header: RecordingHeader;
  samples: LayeredSample[];
  /** The first worker of `engine` at `hour` (null when it was not running then). */
  subjectAt(engine: string, hour: number): ModelSubject | null;
}

const uuidOf = (gpu: number, mig: boolean): string =>
  mig ? `MIG-0e7b2d64-93a8-4f1c-b5d7-${(0x1a2e8c9f3b00 + gpu).toString(16)}` : `GPU-5d8a1e0c-7f3b-4a62-9c1e-${(0x2b8f0d4e6a00 + gpu).toString(16)}`;
const parentUuid = (gpu: number): string => `GPU-5d8a1e0c-7f3b-4a62-9c1e-${(0x2b8f0d4e6a00 + gpu).toString(16)}`;

/** Requests per second at `hour` of the day: the peak at 15:00, the night's floor at 03:00. */
function arrivalRate(spec: HostModelSpec, hourOfDay: number): number {
  const day = (1 + Math.cos((2 * Math.PI * (hourOfDay - 15)) / 24)) / 2;
  return spec.traffic.peakRequestsPerSecond * (spec.traffic.nightShare + (1 - spec.traffic.nightShare) * day);
}

function inRange(ranges: readonly [number, number][] | undefined, hour: number): boolean {
  return (ranges ?? []).some(([from, to]) => hour >= from && hour < to);
}

function newWorker(engine: EngineSpec, rank: number, pid: number, startS: number): Worker {
  return {
    engine,
    rank,
    pid,
    startS,
    startTicks: Math.round((1_000_000 + startS) * CLOCK_TICKS),
    readyS: null,
    outside: 0,
    allocated: 0,
    reserved: 0,
    inactiveSplit: 0,
    retries: 0,
    anon: 900,
    anonOutside: 180,
    mallocFree: 0,
    churn: 0,
    splitChurn: 0,
    file: 400,
    shmem: 0,
    driverMapped: 0,
    pending: 0,
    firstRequestS: null,
    leaked: 0,
    cacheMiB: 0,
    stepDone: new Set(),
  };
}

/**
 * The start-up, as vLLM goes through it: CUDA initialised at 3 s (the context; NVML lists the
 * process from then on), weights loaded over tens of seconds (NCCL set up first with tensor
 * parallelism), the profile run's activations freed again, the KV arena in one allocation, CUDA
 * graphs captured (private pools inside the allocator, graph memory outside), then ready.
 */
function startUp(w: Worker, ageS: number, tp: number): void {
  const weightsS = 20 + w.engine.weightsMiB / 2048;
  const tKv = 3 + weightsS + 12;
  const tGraphs = tKv + 5;
  const graphS = 25;
  const ready = tGraphs + graphS + 5;
  const along = (from: number, span: number) => Math.min(1, Math.max(0, (ageS - from) / span));
  const nccl = tp > 1 ? 640 : 0;
  w.outside = CONTEXT_MIB + nccl * along(3, 2) + 310 * along(3 + weightsS, 1) + 620 * along(tGraphs, graphS);
  const profile = ageS >= 3 + weightsS + 2 && ageS < 3 + weightsS + 8 ? 2048 : 0;
  const pools = 480 * along(tGraphs, graphS);
  w.allocated = w.engine.weightsMiB * along(3, weightsS) + profile + w.engine.kvMiB * along(tKv, 1) + 0.6 * pools;
  w.reserved = w.engine.weightsMiB * along(3, weightsS) + profile + w.engine.kvMiB * along(tKv, 1) + pools + 64;
  w.anon = 900 + 2600 * along(0, ready);
  w.anonOutside = 180 + 520 * along(0, ready);
  w.mallocFree = 250 * along(0, ready);
  w.file = 400 + 1500 * along(0, ready);
  w.shmem = 320 * along(3, 10);
  w.driverMapped = 72 * along(3, 2);
  if (ageS >= ready) w.readyS = w.startS + ready;
}

/** One 5-second step of a serving worker under `running` requests. */
function serve(w: Worker, spec: HostModelSpec, state: EngineState, nowS: number, random: SeededRandom, finishedNow: number): void {
  const hour = nowS / HOUR_S;
  const running = state.running;
  const idle = running === 0 && state.waiting === 0;
  if (running > 0 && w.firstRequestS === null) w.firstRequestS = nowS;
  const maxBatch = spec.traffic.maxBatch ?? 64;
  const base = w.engine.weightsMiB + w.engine.kvMiB + 0.6 * 480;
  // Activations of the batch in flight live inside the cached pool.
  const activations = (Math.min(running, maxBatch) / maxBatch) * 256 * random.next();
  w.allocated = base + w.leaked + activations;
  w.reserved = Math.max(w.reserved, base + 480 * 0.4 + 64 + w.cacheMiB + w.leaked);
  for (const effect of w.rank === 0 ? (w.engine.effects ?? []) : []) {
    switch (effect.kind) {
      case 'graph-creep':
        if (hour >= effect.fromHour && hour < (effect.toHour ?? Infinity) && running > 0) {
          // A new shape arrives now and then; each capture holds a few to tens of MiB.
          w.pending += (effect.mibPerHour * STEP_S) / HOUR_S;
          const [low, high] = effect.captureMiB ?? [16, 64];
          const size = low + (high - low) * random.next();
          if (w.pending >= size) {
            w.outside += size;
            w.pending -= size;
          }
        }
        break;
      case 'fragmentation':
        if (hour >= effect.fromHour && running <= 2 && running > 0 && random.next() < 0.5) {
          // Half the low-load steps leave a piece: mibPerHour over an hour of low load.
          const piece = (2 * effect.mibPerHour * STEP_S) / HOUR_S;
          w.inactiveSplit += piece;
          w.reserved += piece;
          if (random.next() < 0.02) w.retries++;
        }
        break;
      case 'heap-leak':
        if (hour >= effect.fromHour) w.anon += (effect.mibPerHour * STEP_S) / HOUR_S;
        break;
      case 'rss-growth':
        if (hour >= effect.fromHour && hour < (effect.toHour ?? Infinity)) {
          const mib = (effect.mibPerHour * STEP_S) / HOUR_S;
          if (effect.part === 'anonMappings') {
            w.anon += mib;
            w.anonOutside += mib;
          } else {
            w[effect.part] += mib;
          }
        }
        break;
      case 'lazy-init':
        if (w.firstRequestS !== null) {
          const done = Math.min(1, (nowS - w.firstRequestS) / effect.rampSeconds);
          const target = effect.mib * done;
          if (target > w.pending) {
            w.outside += target - w.pending;
            w.pending = target;
          }
        }
        break;
      case 'idle-growth':
        if (idle) w.outside += (effect.mibPerIdleHour * STEP_S) / HOUR_S;
        break;
      case 'tensor-leak':
        if (hour >= effect.fromHour) {
          w.leaked += (finishedNow * effect.kibPerRequest) / 1024;
          w.allocated = base + w.leaked + activations;
          w.reserved = Math.max(w.reserved, w.allocated + 64);
        }
        break;
      case 'step':
        if (hour >= effect.atHour && !w.stepDone.has(effect.atHour)) {
          w.stepDone.add(effect.atHour);
          if (effect.where === 'outside') w.outside += effect.mib;
          else {
            w.leaked += effect.mib;
            w.allocated += effect.mib;
            w.reserved += effect.mib;
          }
        }
        break;
      case 'sawtooth': {
        const phase = (nowS % (effect.periodMinutes * 60)) / (effect.periodMinutes * 60);
        w.reserved = base + 480 * 0.4 + 64 + w.leaked + effect.mib * phase;
        break;
      }
      case 'cache-warmup':
        w.cacheMiB = Math.max(w.cacheMiB, (effect.mib * Math.min(running, maxBatch)) / maxBatch);
        break;
      case 'heap-churn':
        w.churn = effect.mib * ((nowS % (effect.periodMinutes * 60)) / (effect.periodMinutes * 60));
        break;
      case 'split-churn':
        w.splitChurn = (effect.mib * Math.min(running, maxBatch)) / maxBatch * random.next();
        break;
      case 'jitter':
        break;
    }
  }
}

function processRow(pid: number, bytes: number, mig: boolean): GpuProcess {
  return { pid, usedBytes: bytes, types: ['compute'], gpuInstanceId: mig ? 1 : null, computeInstanceId: mig ? 0 : null };
}

function memory(totalMiB: number, usedBytes: number) {
  const total = totalMiB * MiB;
  return { totalBytes: total, usedBytes, freeBytes: Math.max(0, total - RESERVED_MIB * MiB - usedBytes), reservedBytes: RESERVED_MIB * MiB, version: 2 as const };
}

export function modelRecording(spec: HostModelSpec): ModelRecording {
  if (spec.intervalSeconds % STEP_S !== 0) throw new Error(`host model ${spec.name}: the interval must be a multiple of ${STEP_S} s`);
  const random = seededRandom(spec.seed);
  const noise = seededRandom(spec.seed ^ 0x5bd1e995);
  const mig = spec.mig === true;
  const companion = spec.companion !== false;
  const tokens = seededRandom(spec.seed ^ 0x27d4eb2f);
  const engines: EngineState[] = spec.engines.map((e, index) => ({
    spec: e,
    index,
    incarnation: -1,
    listenerPid: 0,
    workers: [],
    running: 0,
    waiting: 0,
    finished: 0,
    promptTokens: 0,
    generationTokens: 0,
    load: null,
    oomKills: 0,
    cgroupPath: `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5e3c9a1f_0b7d_4c2e_9f6a_${(0x1d2c3b4a5900 + index).toString(16)}.slice/cri-containerd-${(index + 1).toString(16).padStart(2, '0').repeat(32)}.scope`,
  }));
  const lifetimes: { engine: string; fromS: number; toS: number; subject: ModelSubject }[] = [];
  const samples: LayeredSample[] = [];
  const totalS = spec.hours * HOUR_S;
  /** Processes gone since the last sample taken, and when that was. */
  const exits: ProcessExit[] = [];
  let lastSampleAt: string | null = null;

  const launch = (state: EngineState, atS: number): void => {
    const open = lifetimes.find((l) => l.engine === state.spec.name && l.toS === Infinity);
    if (open !== undefined) open.toS = atS;
    state.incarnation++;
    const base = 10_000 * (state.index + 1) + 100 * state.incarnation;
    state.listenerPid = base;
    state.workers = state.spec.gpus.map((_, rank) => newWorker(state.spec, rank, base + 11 + rank, atS));
    state.running = 0;
    state.waiting = 0;
    state.finished = 0;
    state.promptTokens = 0;
    state.generationTokens = 0;
    lifetimes.push({ engine: state.spec.name, fromS: atS, toS: Infinity, subject: { deviceIndex: state.spec.gpus[0]!, pid: state.workers[0]!.pid } });
  };
  for (const state of engines) {
    const start = state.spec.startHour === undefined ? -3600 : state.spec.startHour * HOUR_S;
    if (start <= 0) launch(state, start);
  }

  for (let nowS = 0; nowS <= totalS; nowS += STEP_S) {
    const hour = nowS / HOUR_S;
    for (const state of engines) {
      const s = state.spec;
      if (state.incarnation === -1 && s.startHour !== undefined && nowS >= s.startHour * HOUR_S) launch(state, nowS);
      // What the recorder's monitor sees at its next sample: the workers gone, and the count of
      // its container's OOM kills, risen or not.
      const end = (killed: boolean): void => {
        for (const w of state.workers.filter((w) => lastSampleAt !== null && nowS - w.startS >= 3)) {
          exits.push({
            pid: w.pid,
            deviceIndex: s.gpus[w.rank]!,
            uuid: mig ? parentUuid(s.gpus[w.rank]!) : uuidOf(s.gpus[w.rank]!, false),
            startTimeTicks: w.startTicks,
            lastSeenAt: lastSampleAt!,
            cgroupPath: state.cgroupPath,
            oomKillsBefore: state.oomKills,
            oomKillsAfter: state.oomKills + (killed ? 1 : 0),
            oomKillsReadFrom: state.cgroupPath,
            errors: {},
          });
        }
        if (killed) state.oomKills++;
        launch(state, nowS);
      };
      for (const h of s.restartHours ?? []) if (nowS - STEP_S < h * HOUR_S && nowS >= h * HOUR_S) end(false);
      const limit = s.containerLimitMiB;
      // The kernel reclaims the inactive page cache first: it kills when the working set is at the limit.
      if (limit !== undefined && state.incarnation !== -1 && (s.effects ?? []).some((e) => e.kind === 'oom-kill') && containerMiB(state) - INACTIVE_FILE_MIB >= limit) end(true);
      if (state.incarnation === -1) continue;
      const ready = state.workers.every((w) => w.readyS !== null);
      // M/M/inf in 5 s steps: arrivals, then each running request finishes with 1 - e^(-dt/S).
      const quiet = hour < (spec.traffic.quietHours ?? 0);
      const rate = ready && !quiet ? arrivalRate(spec, ((spec.startMs / 1000 + nowS) / HOUR_S) % 24) * (s.loadShare ?? 1) : 0;
      const inSystem = state.running + state.waiting;
      const done = inSystem === 0 ? 0 : binomial(random, inSystem, 1 - Math.exp(-STEP_S / spec.traffic.meanServiceSeconds));
      const arrivals = random.poisson(rate * STEP_S);
      const total = inSystem - done + arrivals;
      const maxBatch = spec.traffic.maxBatch ?? 64;
      state.running = Math.min(total, maxBatch);
      state.waiting = total - state.running;
      state.finished += done;
      // Tokens from their own draws, so the host's other figures are the same with or without
      // them: prompts of a few hundred tokens, about 40 tokens a second per running sequence.
      for (let i = 0; i < arrivals; i++) state.promptTokens += Math.round(200 + 1200 * tokens.next());
      state.generationTokens += Math.round(state.running * STEP_S * (30 + 20 * tokens.next()));
      for (const w of state.workers) {
        if (w.readyS === null) startUp(w, nowS - w.startS, s.gpus.length);
        else serve(w, spec, state, nowS, random, done);
      }
    }
    if (nowS % spec.intervalSeconds !== 0) continue;
    if (inRange(spec.recorder?.pauses, hour)) continue;
    // The recorder's drops use their own draws, so the host is the same whatever is dropped.
    if (noise.next() < (spec.recorder?.dropShare ?? 0)) continue;
    const sample = sampleAt(spec, engines, nowS, noise, companion && !inRange(spec.staleCompanion, hour), mig);
    samples.push({ ...sample, exits: lastSampleAt === null ? null : exits.splice(0) });
    lastSampleAt = sample.takenAt;
  }
  const firstSample = samples[0]!;
  return {
    header: recordingHeaderFor(firstSample, { host: `model-${spec.name}`, intervalMs: spec.intervalSeconds * 1000, startedAt: firstSample.takenAt, gpuLayersVersion: 'host-model' }),
    samples,
    subjectAt: (engine, hour) => lifetimes.find((l) => l.engine === engine && hour * HOUR_S >= l.fromS && hour * HOUR_S < l.toS)?.subject ?? null,
  };
}

function binomial(random: SeededRandom, n: number, p: number): number {
  if (n > 100) return Math.max(0, Math.min(n, Math.round(n * p + random.normal(Math.sqrt(n * p * (1 - p))))));
  let k = 0;
  for (let i = 0; i < n; i++) if (random.next() < p) k++;
  return k;
}

function sampleAt(spec: HostModelSpec, engines: EngineState[], nowS: number, noise: SeededRandom, companionFresh: boolean, mig: boolean): LayeredSample {
  const takenAtMs = spec.startMs + nowS * 1000;
  const takenAt = new Date(takenAtMs).toISOString();
  const workers = engines.flatMap((e) => e.workers.filter((w) => nowS - w.startS >= 3).map((w) => ({ w, e })));
  const figures = new Map<number, { driver: number; w: Worker; e: EngineState }>();
  for (const { w, e } of workers) {
    const jitter = (w.engine.effects ?? []).find((x) => x.kind === 'jitter');
    const driver = Math.max(0, Math.round((w.outside + w.reserved + noise.normal(2) + (jitter !== undefined && w.rank === 0 ? noise.normal(jitter.mib) : 0)) * MiB));
    figures.set(w.pid, { driver, w, e });
  }
  const devices: Device[] = Array.from({ length: spec.gpus }, (_, gpu) => {
    const here = [...figures.values()].filter(({ w }) => w.engine.gpus[w.rank] === gpu);
    const used = here.reduce((sum, f) => sum + f.driver, 0);
    const rows = here.map((f) => processRow(f.w.pid, f.driver, mig));
    const migDevices: MigDevice[] = mig
      ? [{ slot: 0, uuid: uuidOf(gpu, true), name: `MIG ${Math.round(spec.gpuMiB / 1024)}gb`, gpuInstanceId: 1, computeInstanceId: 0, cudaOrdinal: gpu, memory: memory(spec.gpuMiB, used), processes: rows, errors: {} }]
      : [];
    return {
      index: gpu,
      uuid: mig ? parentUuid(gpu) : uuidOf(gpu, false),
      name: 'NVIDIA H100 80GB HBM3',
      cudaOrdinal: mig ? null : gpu,
      pci: { busId: `00000000:${(0x18 + gpu * 0x10).toString(16).toUpperCase().padStart(2, '0')}:00.0`, domain: 0, bus: 0x18 + gpu * 0x10, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
      memory: memory(mig ? 81_559 : spec.gpuMiB, used),
      bar1: null,
      utilization: null,
      mig: mig ? { enabled: true, pendingEnabled: true, devices: migDevices } : { enabled: false, pendingEnabled: false, devices: [] },
      processes: mig ? [] : rows,
      errors: {},
    };
  });
  const sample: Sample = {
    schemaVersion: SAMPLE_SCHEMA_VERSION,
    takenAt,
    durationMs: 0.3,
    driver: { version: DRIVER_VERSION, nvmlVersion: `12.${DRIVER_VERSION}`, cudaDriverVersion: 12040 },
    library: { nvml: { requested: 'libnvidia-ml.so.1', loadedPath: null, symbols: {} }, cuda: null, processRowBytes: { compute: 24, graphics: 24, mps: 24 } },
    cuda: { available: true, driverVersion: 12040, deviceCount: spec.gpus, error: null },
    devices,
    errors: {},
  };
  for (const device of devices) for (const p of [...(device.processes ?? []), ...(device.mig?.devices ?? []).flatMap((m) => m.processes ?? [])]) p.command = commandOf(figures.get(p.pid)!.w);

  const host = new Map<number, HostLayer>();
  const companions = new Map<number, CompanionResult>();
  const framework = new Map<number, FrameworkResult>();
  const scrapeFailed = noise.next() < (spec.failedScrapeShare ?? 0);
  const hosts = new Map([...figures.values()].map(({ w }) => [w.pid, hostFigures(w, noise)]));
  const loads = new Map(engines.filter((e) => e.incarnation >= 0).map((e) => [e.index, engineLoad(e, takenAtMs)]));
  for (const { w, e } of figures.values()) {
    const figuresOfHost = hosts.get(w.pid)!;
    host.set(w.pid, hostLayer(w, figuresOfHost, containerOf(e, spec, hosts)));
    if (companionFresh) companions.set(w.pid, companionResult(w, figuresOfHost, uuidOf(w.engine.gpus[w.rank]!, mig), takenAtMs, noise));
    else companions.set(w.pid, { ok: false, file: `/dev/shm/gpu-layers/${w.pid}.json`, error: spec.companion === false ? sourceError('COMPANION_MISSING', 'no companion file') : sourceError('COMPANION_STALE', 'the companion stopped writing') });
    framework.set(w.pid, scrapeFailed ? { layer: null, reason: sourceError('VLLM_UNREACHABLE', 'the scrape failed') } : { layer: frameworkLayer(w, e, loads.get(e.index)!), errors: {} });
  }
  const calibration: CalibrationEntry[] = devices.map((d) => ({
    uuid: mig ? uuidOf(d.index, true) : d.uuid!,
    name: d.name,
    driverVersion: DRIVER_VERSION,
    moduleLoading: 'LAZY',
    contextBytes: CONTEXT_MIB * MiB,
    measuredAt: '2026-11-01T00:00:00.000Z',
  }));
  const ok = (location: string) => ({ location, ok: true, error: null });
  return joinLayers(sample, {
    host,
    companion: companions,
    framework,
    calibration: { entries: calibration, moduleLoading: 'LAZY', error: null },
    sources: {
      companion: ok('/dev/shm/gpu-layers'),
      vllmMetrics: spec.engines.map((_, i) => ({ location: `http://127.0.0.1:${8000 + i}/metrics`, ok: !scrapeFailed, error: scrapeFailed ? sourceError('VLLM_UNREACHABLE', 'the scrape failed') : null })),
      vllmLog: null,
      hfConfig: null,
      calibration: ok('/var/cache/gpu-layers/context-calibration.json'),
    },
  });
}

function commandOf(w: Worker): string {
  return w.engine.gpus.length > 1 ? `VLLM::Worker_TP${w.rank}` : 'VLLM::EngineCore';
}

/** A worker's anonymous memory at a sample, in MiB: the one noise draw the host layer takes. */
interface HostFigures {
  anon: number;
  mallocInUse: number;
}

function hostFigures(w: Worker, noise: SeededRandom): HostFigures {
  const anon = w.anon + w.churn + noise.normal(6);
  return { anon, mallocInUse: anon - w.anonOutside - w.mallocFree };
}

const STACK_MIB = 8;

function hostLayer(w: Worker, figures: HostFigures, container: ContainerMemory): HostLayer {
  const mib = (v: number) => Math.max(0, Math.round(v * MiB));
  const anon = mib(figures.anon);
  const file = mib(w.file + w.driverMapped);
  const shmem = mib(w.shmem);
  // malloc's main arena (the brk heap) holds most of its memory; thread arenas and large chunks
  // are anonymous mappings, with everything outside malloc.
  const heap = mib(0.6 * (figures.mallocInUse + w.mallocFree));
  return {
    rssBytes: anon + file + shmem,
    anonBytes: anon,
    fileBytes: file,
    shmemBytes: shmem,
    driverMappedBytes: mib(w.driverMapped),
    heapBytes: heap,
    anonMappingsBytes: Math.max(0, anon - heap - mib(STACK_MIB)),
    anonMappingsCount: 40 + Math.ceil(w.anonOutside / 64),
    malloc: null,
    python: null,
    outsideMallocBytes: null,
    container,
    containerId: container.path.slice(-70, -6),
    podUid: null,
    nspid: [w.pid],
    startTimeTicks: w.startTicks,
    errors: {},
  };
}

/** The API server's memory and the page cache in each engine's container, beside its workers;
 * of the page cache, what is inactive (reclaimable). */
const CONTAINER_EXTRA_MIB = 1536 + 1228;
const INACTIVE_FILE_MIB = 820;

/** The engine's container usage in MiB, as the kernel counts it against the limit. */
function containerMiB(e: EngineState, hosts?: ReadonlyMap<number, HostFigures>): number {
  return e.workers.reduce((sum, w) => sum + (hosts?.get(w.pid)?.anon ?? w.anon + w.churn) + w.file + w.shmem, 0) + CONTAINER_EXTRA_MIB;
}

/** The engine's container: its workers, the API server's 1.5 GiB and 1.2 GiB of page cache. */
function containerOf(e: EngineState, spec: HostModelSpec, hosts: ReadonlyMap<number, HostFigures>): ContainerMemory {
  const mib = (v: number) => Math.max(0, Math.round(v * MiB));
  const usage = containerMiB(e, hosts);
  const limit = e.spec.containerLimitMiB;
  return {
    cgroupVersion: 2,
    path: e.cgroupPath,
    usageBytes: mib(usage),
    workingSetBytes: mib(usage - INACTIVE_FILE_MIB),
    limitBytes: limit === undefined ? null : mib(limit),
    oomEvents: e.oomKills,
    oomKills: e.oomKills,
    errors: limit === undefined ? { limitBytes: sourceError('NO_LIMIT', `${spec.name}: the container has no memory limit`) } : {},
  };
}

/** The load the recorder's monitor derives from the engine's counters at this sample. */
function engineLoad(e: EngineState, atMs: number): { counters: VllmCountersLayer; load: RequestLoad } {
  const counters: VllmCountersLayer = {
    promptTokens: e.promptTokens,
    generationTokens: e.generationTokens,
    requestsFinished: e.finished,
    preemptions: 0,
    prefixCacheQueries: null,
    prefixCacheHits: null,
  };
  const next = nextRequestLoad(e.load, counters, e.running, e.waiting, atMs);
  e.load = next.state;
  return { counters, load: next.load };
}

function companionResult(w: Worker, host: HostFigures, uuid: string, nowMs: number, noise: SeededRandom): CompanionResult {
  const mib = (v: number) => Math.max(0, Math.round(v * MiB));
  const split = w.inactiveSplit + w.splitChurn + 24 + 24 * noise.next();
  const reserved = Math.max(w.reserved, w.allocated + split);
  return {
    ok: true,
    file: `/dev/shm/gpu-layers/${w.pid}.json`,
    ageSeconds: 1,
    document: {
      format: 'gpu-layers-companion',
      version: 1,
      pid: w.pid,
      startTimeTicks: w.startTicks,
      writtenAt: nowMs / 1000 - 1,
      intervalSeconds: 2,
      torchVersion: '2.8.0+cu128',
      devices: [
        {
          index: 0,
          uuid: uuid.replace(/^(GPU|MIG)-/, ''),
          name: 'NVIDIA H100 80GB HBM3',
          stats: {
            'reserved_bytes.all.current': mib(reserved),
            'allocated_bytes.all.current': mib(w.allocated),
            'active_bytes.all.current': mib(w.allocated),
            'inactive_split_bytes.all.current': mib(split),
            'requested_bytes.all.current': mib(w.allocated),
            num_alloc_retries: w.retries,
            num_ooms: 0,
          },
          privatePoolBytes: w.readyS === null ? null : 480 * MiB,
        },
      ],
      host: {
        malloc: {
          source: 'mallinfo2',
          arenaBytes: mib(host.mallocInUse * 0.75 + w.mallocFree),
          mmappedBytes: mib(host.mallocInUse * 0.25),
          mmappedChunks: 12 + Math.round(host.mallocInUse / 256),
          inUseBytes: mib(host.mallocInUse),
          freeBytes: mib(w.mallocFree),
          releasableBytes: mib(Math.min(w.mallocFree, 12)),
          arenaCount: null,
        },
        mallocUnknownBecause: null,
        python: { allocatedBlocks: 1_500_000 + Math.round(host.mallocInUse * 1000), tracedBytes: null },
      },
      errors: [],
    },
  };
}

function frameworkLayer(w: Worker, e: EngineState, { counters, load }: { counters: VllmCountersLayer; load: RequestLoad }): FrameworkLayer {
  const kvCacheUsage = w.readyS === null ? 0 : Math.min(1, e.running / 48);
  const kvCacheBytes = w.engine.kvMiB * MiB;
  return {
    engine: 'vllm',
    matchedBy: 'listening-socket',
    weightsBytes: null,
    kvCacheBytes,
    kvCacheSource: 'log',
    kvCacheUsage,
    kvCacheInUseBytes: Math.round(kvCacheBytes * kvCacheUsage),
    kvBlockAlignment: null,
    numGpuBlocks: Math.round((w.engine.kvMiB * MiB) / (2 * MiB)),
    blockSize: 16,
    requestsRunning: e.running,
    requestsWaiting: e.waiting,
    counters,
    load,
    cudaGraphBytes: null,
    nonTorchBytes: null,
    sources: { metrics: `http://127.0.0.1:${8000 + e.index}/metrics`, log: null },
  };
}

/**
 * The same host recorded less often: every `factor`-th sample of a recording. A process gone
 * between two kept samples is told in the next kept one, last seen at the kept one before (as a
 * monitor sampling that often would have said), and not at all when no kept sample had it.
 */
export function resampled(recording: ModelRecording, factor: number): ModelRecording {
  const start = Date.parse(recording.samples[0]!.takenAt);
  const samples: LayeredSample[] = [];
  let pending: ProcessExit[] = [];
  for (const sample of recording.samples) {
    pending.push(...(sample.exits ?? []));
    if ((Date.parse(sample.takenAt) - start) % (recording.header.intervalMs * factor) !== 0) continue;
    const previous = samples.at(-1);
    const seen = new Set(previous?.devices.flatMap((d) => [...(d.processes ?? []), ...(d.mig?.devices ?? []).flatMap((m) => m.processes ?? [])].map((p) => `${d.index}/${p.pid}`)) ?? []);
    const exits = previous === undefined ? null : pending.filter((e) => seen.has(`${e.deviceIndex}/${e.pid}`)).map((e) => ({ ...e, lastSeenAt: previous.takenAt }));
    samples.push({ ...sample, exits });
    pending = [];
  }
  return { ...recording, header: { ...recording.header, intervalMs: recording.header.intervalMs * factor }, samples };
}
