/**
 * The scenario library: one scripted incident per failure pattern of the postmortems
 * (docs/diagnosis.md), a healthy run, and the demo's overnight incident, each shaped the
 * way the write-up describes it. Sizes are MiB on an H100 80GB serving one vLLM model; each step
 * is one sample.
 */
import type { FakeAllocator, FakeCgroupMemory, FakeProcess } from './fake-host.js';
import type { FakeVllmCounters, FakeVllmServer } from './fake-vllm-server.js';
import { seededNoise, type Incident, type IncidentState } from './incident.js';

const START = Date.UTC(2026, 10, 25, 20, 0, 0);
const MINUTE = 60_000;
/** The worker's context, kernels and NCCL: what lies outside the allocator at start-up. */
const OUTSIDE_MIB = 1180;

interface WorkerShape {
  allocator?: Partial<FakeAllocator>;
  outsideMiB?: number;
  host?: Partial<FakeProcess['host']>;
}

/** A vLLM server on one GPU: the API server (listening, no GPU memory) and its GPU worker. */
function server(base: number, gpu: number, model: string, shape: WorkerShape, load: Omit<FakeVllmServer, 'listenerPid' | 'model' | 'numGpuBlocks'>): IncidentState {
  const allocator: FakeAllocator = { reservedMiB: 66_048, allocatedMiB: 65_420, privatePoolMiB: 412, inactiveSplitMiB: 96, retries: 0, ...shape.allocator };
  const host = { anonMiB: 3_400, fileMiB: 1_900, shmemMiB: 380, driverMappedMiB: 72, container: null, ...shape.host };
  return {
    processes: [
      { pid: base, ppid: 1, command: `vllm serve ${model} --port 8000`, startTicks: 80_000_000 + base, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 900, fileMiB: 520, shmemMiB: 64, driverMappedMiB: 0, container: null } },
      { pid: base + 50, ppid: base, command: 'VLLM::EngineCore', startTicks: 80_000_100 + base, gpu, driverMiB: allocator.reservedMiB + (shape.outsideMiB ?? OUTSIDE_MIB), allocator, host },
    ],
    servers: [{ listenerPid: base, model, numGpuBlocks: 25_600, ...load }],
  };
}

function merge(...states: IncidentState[]): IncidentState {
  return { processes: states.flatMap((s) => s.processes), servers: states.flatMap((s) => s.servers) };
}

const MODEL = 'meta-llama/Llama-3.1-8B-Instruct';
const BATCH_MODEL = 'Qwen/Qwen2.5-14B-Instruct';

/** Steady serving: jitter only, load between 2 and 12 requests. */
function busyLoad(noise: (a: number) => number, step: number) {
  return { running: 7 + noise(5), waiting: Math.max(0, noise(2)), kvCacheUsage: 0.4 + 0.2 * Math.sin(step / 5) };
}

const healthy: Incident = {
  name: 'healthy',
  story: 'Two hours of steady serving: every layer flat within jitter, load between 2 and 12 requests.',
  expect: [],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(1000 + step);
    return server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + noise(3), allocator: { allocatedMiB: 65_420 + noise(40) }, host: { anonMiB: 3_400 + noise(6) } }, busyLoad(noise, step));
  },
};

const cudaGraphCreep: Incident = {
  name: 'cuda-graph-creep',
  story: 'Each new prompt length captures another CUDA graph: memory outside the allocator grows in steps while PyTorch reserved stays flat (the Mistral case).',
  expect: ['cuda-graph-creep'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(2000 + step);
    // A new length every fifth step, 96 MiB of graph memory each: +2.3 GiB over two hours.
    const captured = Math.floor(step / 5);
    return server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + captured * 96 + noise(3), allocator: { allocatedMiB: 65_420 + noise(40) } }, busyLoad(noise, step));
  },
};

/** Reserved by a worker whose cache holds a free block big enough for a prefill at first. */
const FRAGMENTING_RESERVED_MIB = 68_096;

/**
 * Prefill every third step at one request; each leaves a split segment behind, the largest free
 * block shrinks and alloc retries start once it no longer fits a prefill. `retryAfter`: cycles
 * before the first retry.
 */
function fragmentingWorker(step: number, noise: (a: number) => number, base: number, gpu: number, model: string, retryAfter: number): IncidentState {
  const prefill = step % 3 === 1;
  const done = Math.floor((step + 1) / 3);
  return server(
    base,
    gpu,
    model,
    {
      allocator: {
        reservedMiB: FRAGMENTING_RESERVED_MIB + done * 128,
        allocatedMiB: 65_420 + (prefill ? 1_536 : 0) + noise(4),
        inactiveSplitMiB: 96 + done * 120,
        largestFreeMiB: Math.max(384, 2_048 - done * 40),
        retries: Math.max(0, done - retryAfter),
      },
    },
    { running: prefill ? 1 : 0, waiting: 0, kvCacheUsage: prefill ? 0.03 : 0 },
  );
}

const allocatorFragmentation: Incident = {
  name: 'allocator-fragmentation',
  story: 'Low traffic at night: each prefill at one request splits a cached block and leaves free pieces behind, until the largest free block is smaller than the next prefill (the Kubenatives 3 AM case).',
  expect: ['allocator-fragmentation'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    return fragmentingWorker(step, seededNoise(3000 + step), 7100, 0, MODEL, 28);
  },
};

/** malloc's figures of a vLLM engine with `grownMiB` more in use than at the start. */
const engineMalloc = (grownMiB: number) => ({ inUseMiB: 2_100 + grownMiB, freeMiB: 180, mmappedMiB: 640, mmappedChunks: 96, arenas: 1, releasableMiB: 12 });

const hostHeapLeak: Incident = {
  name: 'host-heap-leak',
  story: "A Python object cache that never evicts: malloc's memory in use (and with it the brk heap and anonymous RSS) grows with every request, the GPU is flat (vLLM #8629).",
  expect: ['host-heap-leak'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(4000 + step);
    const grown = step * 36 + noise(4);
    return server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + noise(3), host: { anonMiB: 3_400 + grown, heapMiB: 1_480 + grown, malloc: engineMalloc(grown) } }, busyLoad(noise, step));
  },
};

const rssNotMallocAnonymous: Incident = {
  name: 'rss-not-malloc-anonymous',
  story:
    "The write-up's first case on the host: anonymous RSS grows 1.8 GiB an hour in mappings outside malloc (a communication library's registration cache), while malloc's own figures are flat: heap profilers show nothing.",
  expect: ['rss-not-malloc'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(4500 + step);
    const churn = noise(4);
    return server(
      7100,
      0,
      MODEL,
      { outsideMiB: OUTSIDE_MIB + noise(3), host: { anonMiB: 3_400 + step * 30 + churn, heapMiB: 1_480 + churn, anonMappings: 120 + Math.floor(step / 2), malloc: engineMalloc(churn) } },
      busyLoad(noise, step),
    );
  },
};

const rssNotMalloc: Incident = {
  name: 'rss-not-malloc',
  story: 'RSS grows in the /dev/nvidia* mappings (pinned and driver buffers) while the heap is flat: a "leak" heap profilers cannot find.',
  expect: ['rss-not-malloc'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(5000 + step);
    return server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + noise(3), host: { anonMiB: 3_400 + noise(6), driverMappedMiB: 72 + step * 28 + noise(2) } }, busyLoad(noise, step));
  },
};

const lazyInit: Incident = {
  name: 'lazy-init',
  story: 'A communication library initialises at the first requests: one step outside the allocator, flat before and after (the NIXL case).',
  expect: ['lazy-init'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(6000 + step);
    const serving = step >= 20;
    return server(
      7100,
      0,
      MODEL,
      { outsideMiB: OUTSIDE_MIB + (serving ? 1_240 : 0) + noise(3) },
      serving ? busyLoad(noise, step) : { running: 0, waiting: 0, kvCacheUsage: 0 },
    );
  },
};

const idleGrowth: Incident = {
  name: 'idle-growth',
  story: 'No request for two hours, yet the worker\'s device memory keeps rising: growth while idle.',
  expect: ['idle-growth'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(7000 + step);
    return server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + step * 20 + noise(3) }, { running: 0, waiting: 0, kvCacheUsage: 0 });
  },
};

/** The overnight's pods: the chat server's and the batch server's (64-hex container ids). */
const CHAT_POD = '3f9c2a7e51b84d06a2c7e9f1b3d5a7c90e2f4a6b8c1d3e5f7a9b0c2d4e6f8a1b';
const BATCH_POD = 'c7d1e93a05b2f4a8c6e0d2b4f6a8c0e2d4f6a8b0c2e4d6f8a0b2c4e6d8f0a2b4';
/** The batch queue ran dry for half an hour in the evening (steps 36-43, 22:24-22:52): nothing ran. */
const BATCH_QUIET = { from: 36, to: 43 } as const;

/**
 * The overnight's GPU figures and load at one step, before the host's and the counters' (the
 * noise drawn in the same order as when the incident had none, so the GPU layers are the same).
 */
function overnightGpus(step: number): IncidentState {
  const noise = seededNoise(8000 + step);
  const captured = Math.floor(step / 4);
  const chat = server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + captured * 72 + noise(3), allocator: { allocatedMiB: 65_420 + noise(40) } }, busyLoad(noise, step));
  // The batch server serves steadily until midnight (step 60), but for its quiet half hour, then
  // trickles along: one long document every third interval.
  if (step < 60) {
    const allocatedMiB = 65_420 + noise(40);
    const load = busyLoad(noise, step);
    const quiet = step >= BATCH_QUIET.from && step <= BATCH_QUIET.to;
    const batch = server(7300, 1, BATCH_MODEL, { allocator: { reservedMiB: FRAGMENTING_RESERVED_MIB, allocatedMiB, largestFreeMiB: 2_048 } }, quiet ? { running: 0, waiting: 0, kvCacheUsage: 0 } : load);
    return merge(chat, batch);
  }
  return merge(chat, fragmentingWorker(step - 60, noise, 7300, 1, BATCH_MODEL, 8));
}

/** What one server's counters gained over an interval. */
interface Work {
  prompt: number;
  generation: number;
  stop: number;
  length: number;
  preemptions: number;
  prefixHits: number;
}

/**
 * The chat server's work over the interval ending at `step`, from the requests running then: a
 * request takes about 16 s, so each one running stands for 15 in four minutes. Long prompts in
 * the evening (retrieval-augmented chat: prefill-heavy), long answers after midnight (decode).
 */
function chatWork(step: number, load: FakeVllmServer, noise: (a: number) => number): Work {
  const requests = Math.max(1, Math.round(load.running * 15 * (1 + noise(10) / 100)));
  const prompt = requests * (1_400 - 10 * step + noise(120));
  const length = Math.round(requests * 0.06);
  return {
    prompt,
    generation: requests * (300 + 6 * step + noise(40)),
    stop: requests - length,
    length,
    preemptions: load.kvCacheUsage > 0.57 ? 1 : 0,
    prefixHits: Math.round(prompt * (0.45 + noise(5) / 100)),
  };
}

/**
 * The batch server's work: long documents until midnight (about 40 s each, prefill-heavy); none
 * while its queue was empty; after midnight a few short chat requests an interval (more generated
 * than prompted) and, every third interval, one long document whose prefill is the one that
 * splits a cached block (the allocator's story), finished in the next interval. At least three
 * requests finish in every interval of the night (0.0125 a second): low load, not idle by the
 * write-up's alert (under 0.01 a second), so the growth is the fragmentation rule's to name.
 */
function batchWork(step: number, load: FakeVllmServer, noise: (a: number) => number): Work {
  if (step < 60) {
    const requests = load.running === 0 && load.waiting === 0 ? 0 : Math.max(1, Math.round(load.running * 6 * (1 + noise(10) / 100)));
    const prompt = requests * (3_800 + noise(300));
    const length = Math.round(requests * 0.03);
    return { prompt, generation: requests * (420 + noise(40)), stop: requests - length, length, preemptions: 0, prefixHits: Math.round(prompt * 0.12) };
  }
  const cycle = (step - 60) % 3;
  const small = 3 + Math.abs(noise(3));
  const document = cycle === 1 ? 7_000 + noise(400) : 0;
  const prompt = small * (220 + noise(40)) + document;
  return {
    prompt,
    generation: small * (400 + noise(60)) + (cycle === 2 ? 650 + noise(50) : 0),
    stop: small + (cycle === 2 ? 1 : 0),
    length: 0,
    preemptions: 0,
    prefixHits: Math.round(prompt * 0.2),
  };
}

/** Counters from `base` plus the work of every interval up to `step`. */
function countersAt(step: number, base: FakeVllmCounters, work: (step: number, noise: (a: number) => number) => Work): FakeVllmCounters {
  let prompt = base.promptTokens;
  let generation = base.generationTokens;
  let stop = base.requestsFinished.stop ?? 0;
  let length = base.requestsFinished.length ?? 0;
  let preemptions = base.preemptions ?? 0;
  let hits = base.prefixCacheHits ?? 0;
  for (let i = 1; i <= step; i++) {
    const w = work(i, seededNoise(9000 + i));
    prompt += w.prompt;
    generation += w.generation;
    stop += w.stop;
    length += w.length;
    preemptions += w.preemptions;
    hits += w.prefixHits;
  }
  return {
    ...base,
    promptTokens: prompt,
    generationTokens: generation,
    requestsFinished: { ...base.requestsFinished, stop, length },
    preemptions,
    prefixCacheQueries: (base.prefixCacheQueries ?? 0) + prompt - base.promptTokens,
    prefixCacheHits: hits,
  };
}

const CHAT_COUNTERS: FakeVllmCounters = {
  promptTokens: 18_412_300,
  generationTokens: 5_151_840,
  requestsFinished: { stop: 15_322, length: 978, abort: 12 },
  preemptions: 7,
  prefixCacheQueries: 18_412_300,
  prefixCacheHits: 8_105_120,
  startedAt: START / 1000 - 6 * 3600,
};
const BATCH_COUNTERS: FakeVllmCounters = {
  promptTokens: 52_034_900,
  generationTokens: 6_100_410,
  requestsFinished: { stop: 13_611, length: 412, abort: 3 },
  preemptions: 0,
  prefixCacheQueries: 52_034_900,
  prefixCacheHits: 6_240_000,
  startedAt: START / 1000 - 9 * 3600,
};

/**
 * A vLLM engine's host memory on a quiet heap: malloc's figures flat within a few MiB of churn,
 * moving with the anonymous RSS; what lies outside malloc (pymalloc arenas, CUDA's and Triton's
 * own mappings) flat.
 */
interface EngineHost {
  anonMiB: number;
  fileMiB: number;
  heapMiB: number;
  malloc: { inUseMiB: number; freeMiB: number; mmappedMiB: number; mmappedChunks: number; arenas: number; releasableMiB: number };
  pythonBlocks: number;
  /** Page cache charged to the pod (the model's weights, read once at start) and how much of it is inactive. */
  pageCacheMiB: number;
  inactiveFileMiB: number;
  limitMiB: number;
}

const CHAT_HOST: EngineHost = {
  anonMiB: 3_400,
  fileMiB: 1_900,
  heapMiB: 1_180,
  malloc: { inUseMiB: 2_100, freeMiB: 180, mmappedMiB: 640, mmappedChunks: 96, arenas: 17, releasableMiB: 12 },
  pythonBlocks: 4_210_000,
  pageCacheMiB: 15_600,
  inactiveFileMiB: 13_900,
  limitMiB: 32 * 1024,
};
const BATCH_HOST: EngineHost = {
  anonMiB: 4_200,
  fileMiB: 2_600,
  heapMiB: 1_500,
  malloc: { inUseMiB: 2_700, freeMiB: 260, mmappedMiB: 900, mmappedChunks: 120, arenas: 17, releasableMiB: 20 },
  pythonBlocks: 4_480_000,
  pageCacheMiB: 28_900,
  inactiveFileMiB: 26_100,
  limitMiB: 48 * 1024,
};

/**
 * The server's processes in their pod, the engine with its host figures (`churn`: MiB of malloc
 * churn this step, in the heap and the anonymous RSS alike, so what lies outside malloc stays
 * put) and the pod's cgroup, and the server with its counters.
 */
function withHost(state: IncidentState, pod: string, engine: EngineHost, churn: number, counters: FakeVllmCounters): IncidentState {
  const anonOf = (p: FakeProcess) => (p.gpu === null ? p.host.anonMiB : engine.anonMiB + churn);
  const members = state.processes;
  // The pod's usage: its processes' anonymous and shared memory, the page cache, 160 MiB of kernel memory.
  const cgroup: FakeCgroupMemory = {
    usageMiB: members.reduce((sum, p) => sum + anonOf(p) + p.host.shmemMiB, 0) + engine.pageCacheMiB + 160,
    limitMiB: engine.limitMiB,
    inactiveFileMiB: engine.inactiveFileMiB,
  };
  return {
    processes: members.map((p) =>
      p.gpu === null
        ? { ...p, host: { ...p.host, container: pod, cgroup } }
        : {
            ...p,
            host: {
              ...p.host,
              anonMiB: anonOf(p),
              fileMiB: engine.fileMiB,
              container: pod,
              heapMiB: engine.heapMiB + churn,
              // malloc's 16 thread arenas and its mmapped chunks, and 24 mappings of others (pymalloc, CUDA, Triton).
              anonMappings: engine.malloc.arenas - 1 + engine.malloc.mmappedChunks + 24,
              malloc: { ...engine.malloc, inUseMiB: engine.malloc.inUseMiB + churn },
              python: { allocatedBlocks: engine.pythonBlocks + churn * 1_200 },
              cgroup,
            },
          },
    ),
    servers: state.servers.map((server) => ({ ...server, counters })),
  };
}

/**
 * The demo's night on a two-GPU host: the chat server on GPU 0 creeps as new prompt lengths
 * arrive in the evening, the batch server on GPU 1 fragments once traffic drops after midnight.
 * Host side nothing goes wrong: each engine's heap is flat in malloc's own figures, and its pod
 * holds the model's weights in page cache (most of its usage, little of its working set). The
 * servers' counters move with the load: prefill-heavy chat in the evening and decode after
 * midnight, the batch server's long documents, its quiet half hour, and its night trickle.
 */
const overnight: Incident = {
  name: 'overnight',
  story: 'One night on a two-GPU vLLM host: CUDA graph memory creeping on GPU 0, allocator fragmentation at low load on GPU 1 until the largest free block is smaller than the next prefill.',
  expect: ['allocator-fragmentation', 'cuda-graph-creep'],
  gpus: 2,
  startMs: START,
  intervalMs: 4 * MINUTE,
  steps: 120,
  state(step) {
    const gpus = overnightGpus(step);
    const noise = seededNoise(9500 + step);
    const serverOf = (at: number, pid: number) => overnightGpus(at).servers.find((s) => s.listenerPid === pid)!;
    const chat = countersAt(step, CHAT_COUNTERS, (i, n) => chatWork(i, serverOf(i, 7100), n));
    const batch = countersAt(step, BATCH_COUNTERS, (i, n) => batchWork(i, serverOf(i, 7300), n));
    const part = (pid: number): IncidentState => ({
      processes: gpus.processes.filter((p) => p.pid === pid || p.ppid === pid),
      servers: gpus.servers.filter((s) => s.listenerPid === pid),
    });
    return merge(withHost(part(7100), CHAT_POD, CHAT_HOST, noise(6), chat), withHost(part(7300), BATCH_POD, BATCH_HOST, noise(6), batch));
  },
};

export const INCIDENTS: readonly Incident[] = [healthy, cudaGraphCreep, allocatorFragmentation, hostHeapLeak, rssNotMalloc, rssNotMallocAnonymous, lazyInit, idleGrowth, overnight];

export function incidentNamed(name: string): Incident | undefined {
  return INCIDENTS.find((i) => i.name === name);
}
