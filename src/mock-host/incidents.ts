/**
 * The scenario library: one scripted incident per failure pattern of the postmortems
 * (docs/diagnosis.md), a healthy run, and the demo's overnight incident, each shaped the
 * way the write-up describes it. Sizes are MiB on an H100 80GB serving one vLLM model; each step
 * is one sample.
 */
import type { FakeAllocator, FakeProcess } from './fake-host.js';
import type { FakeVllmServer } from './fake-vllm-server.js';
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

const hostHeapLeak: Incident = {
  name: 'host-heap-leak',
  story: 'A Python object cache that never evicts: the heap (anonymous RSS) grows with every request, the GPU is flat (vLLM #8629).',
  expect: ['host-heap-leak'],
  gpus: 1,
  startMs: START,
  intervalMs: MINUTE,
  steps: 120,
  state(step) {
    const noise = seededNoise(4000 + step);
    return server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + noise(3), host: { anonMiB: 3_400 + step * 36 + noise(4) } }, busyLoad(noise, step));
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

/**
 * The demo's night on a two-GPU host: the chat server on GPU 0 creeps as new prompt lengths
 * arrive in the evening, the batch server on GPU 1 fragments once traffic drops after midnight.
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
    const noise = seededNoise(8000 + step);
    const captured = Math.floor(step / 4);
    const chat = server(7100, 0, MODEL, { outsideMiB: OUTSIDE_MIB + captured * 72 + noise(3), allocator: { allocatedMiB: 65_420 + noise(40) } }, busyLoad(noise, step));
    // The batch server serves steadily until midnight (step 60), then trickles along at one request.
    const batch =
      step < 60
        ? server(7300, 1, BATCH_MODEL, { allocator: { reservedMiB: FRAGMENTING_RESERVED_MIB, allocatedMiB: 65_420 + noise(40), largestFreeMiB: 2_048 } }, busyLoad(noise, step))
        : fragmentingWorker(step - 60, noise, 7300, 1, BATCH_MODEL, 8);
    return merge(chat, batch);
  },
};

export const INCIDENTS: readonly Incident[] = [healthy, cudaGraphCreep, allocatorFragmentation, hostHeapLeak, rssNotMalloc, lazyInit, idleGrowth, overnight];

export function incidentNamed(name: string): Incident | undefined {
  return INCIDENTS.find((i) => i.name === name);
}
