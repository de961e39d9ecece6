/**
 * The built-in demo host: eight H100 80GB GPUs serving LLMs with vLLM (a 70B model with tensor
 * parallelism 4, a 7B chat model, an embedding model), a fine-tuning job and one idle GPU, with
 * everything gpu-layers reads about it, as a FakeHost lays it out: the NVML scenario (with the
 * context size `calibrate` would measure), the processes (with malloc's figures where the
 * companion runs, and each pod's memory cgroup with its limit), two vLLM servers with their
 * counters and the 70B server's startup log. The figures follow what such a host shows (vLLM
 * takes gpu_memory_utilization of the card; the driver keeps about half a GiB; a pod's usage is
 * mostly the weights' page cache); all of it is mock data, and the demo says so.
 */
import type { FakeCgroupMemory, FakeMalloc, FakeProcess, FakeProcessHost } from './fake-host.js';
import type { FakeVllmServer } from './fake-vllm-server.js';
import type { Scenario, ScenarioDevice } from './scenario-schema.js';

export const MiB = 1024 * 1024;
export const TOTAL = 85_520_809_984; // 81559 MiB, an H100 80GB HBM3 as NVML reports it
export const RESERVED = 570_425_344; // 544 MiB kept by the driver and firmware
const BAR1_TOTAL = 137_438_953_472;
export const CONTEXT_MIB = 532; // a bare context on this driver, as `gpu-layers calibrate` measures it
export const DRIVER_VERSION = '550.127.05';

const POD_70B = '5b1e9f3c7a2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7';
const POD_7B = '9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d';
const POD_EMBED = 'e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7a';
const VLLM_HOST = { anonMiB: 6656, fileMiB: 2150, shmemMiB: 410, driverMappedMiB: 70 };
/** glibc malloc in a vLLM GPU worker (17 arenas; large CPU buffers in mmapped chunks); the rest of its anonymous memory is pymalloc's, CUDA's and Triton's. */
const VLLM_MALLOC: FakeMalloc = { inUseMiB: 3900, freeMiB: 310, mmappedMiB: 1450, mmappedChunks: 160, arenas: 17, releasableMiB: 24 };
const VLLM_HEAP = { heapMiB: 2050, anonMappings: 210, malloc: VLLM_MALLOC, python: { allocatedBlocks: 5_120_000 } };

/**
 * Each pod's memory cgroup, with its limit: anonymous and shared memory of its processes, the
 * model's weights in page cache (read once at start, mostly inactive: not in the working set) and
 * some kernel memory.
 */
function podCgroup(anonAndShmemMiB: number, pageCacheMiB: number, inactiveFileMiB: number, limitGiB: number): FakeCgroupMemory {
  return { usageMiB: anonAndShmemMiB + pageCacheMiB + 220, limitMiB: limitGiB * 1024, inactiveFileMiB };
}
// 70B: the API server, the engine and four workers; 7B and the embedding model: server and engine.
const CGROUP_70B = podCgroup(1200 + 96 + 900 + 96 + 4 * (VLLM_HOST.anonMiB + VLLM_HOST.shmemMiB), 131_500, 118_200, 256);
const CGROUP_7B = podCgroup(1100 + 64 + VLLM_HOST.anonMiB + VLLM_HOST.shmemMiB, 15_300, 13_700, 48);
const CGROUP_EMBED = podCgroup(800 + 32 + VLLM_HOST.anonMiB + VLLM_HOST.shmemMiB, 1_150, 900, 24);
/** The fine-tuning job and the notebook share a login session's cgroup, with no limit (the dataset in page cache). */
const SESSION_CGROUP: FakeCgroupMemory = { usageMiB: 14336 + 300 + 2200 + 2048 + 9_400 + 250, limitMiB: null, inactiveFileMiB: 7_900 };

function vllmHost(container: string, cgroup: FakeCgroupMemory): FakeProcessHost {
  return { ...VLLM_HOST, ...VLLM_HEAP, container, cgroup };
}

function worker(tp: number, pid: number, outsideMiB: number): FakeProcess {
  const allocator = { reservedMiB: 69632, allocatedMiB: 68608, privatePoolMiB: 760, inactiveSplitMiB: 120, retries: 0 };
  return {
    pid,
    ppid: 48150,
    command: `VLLM::Worker_TP${tp}`,
    startTicks: 91_204_400 + tp,
    gpu: tp,
    driverMiB: allocator.reservedMiB + outsideMiB,
    allocator,
    host: vllmHost(POD_70B, CGROUP_70B),
  };
}

export const DEMO_PROCESSES: FakeProcess[] = [
  { pid: 48100, ppid: 1, command: 'vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 4 --port 8000', startTicks: 91_203_100, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 1200, fileMiB: 640, shmemMiB: 96, driverMappedMiB: 0, container: POD_70B, cgroup: CGROUP_70B } },
  { pid: 48150, ppid: 48100, command: 'VLLM::EngineCore', startTicks: 91_203_900, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 900, fileMiB: 610, shmemMiB: 96, driverMappedMiB: 0, container: POD_70B, cgroup: CGROUP_70B } },
  // TP0 holds 6.4 GiB outside the allocator, twice its peers: what CUDA graph creep looks like.
  worker(0, 48211, 6554),
  worker(1, 48377, 3482),
  worker(2, 48378, 3482),
  worker(3, 48379, 3482),
  { pid: 51000, ppid: 1, command: 'vllm serve Qwen/Qwen2.5-7B-Instruct --gpu-memory-utilization 0.50 --port 8001', startTicks: 91_310_000, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 1100, fileMiB: 600, shmemMiB: 64, driverMappedMiB: 0, container: POD_7B, cgroup: CGROUP_7B } },
  {
    pid: 51044, ppid: 51000, command: 'VLLM::EngineCore', startTicks: 91_310_500, gpu: 4, driverMiB: 38912 + 1536,
    allocator: { reservedMiB: 38912, allocatedMiB: 37683, privatePoolMiB: 420, inactiveSplitMiB: 200, retries: 0 },
    host: vllmHost(POD_7B, CGROUP_7B),
  },
  {
    pid: 51210, ppid: 51190, command: 'VLLM::EngineCore', startTicks: 91_400_200, gpu: 5, driverMiB: 23552 + 1024,
    allocator: { reservedMiB: 23552, allocatedMiB: 21504, privatePoolMiB: 0, inactiveSplitMiB: 310, retries: 0 },
    host: vllmHost(POD_EMBED, CGROUP_EMBED),
  },
  { pid: 51190, ppid: 1, command: 'vllm serve BAAI/bge-m3 --task embed --gpu-memory-utilization 0.30 --port 8002', startTicks: 91_400_000, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 800, fileMiB: 500, shmemMiB: 32, driverMappedMiB: 0, container: POD_EMBED, cgroup: CGROUP_EMBED } },
  // Fine-tuning at low load: 9 GiB free but trapped in split blocks, and cudaMalloc retries.
  // Host side its C heap keeps 1.9 GiB free in 33 arenas (the dataloader's threads).
  {
    pid: 60332, ppid: 60300, command: 'python3 finetune.py --config configs/lora-8b.yaml', startTicks: 92_100_000, gpu: 6, driverMiB: 53248 + 1228,
    allocator: { reservedMiB: 53248, allocatedMiB: 38912, privatePoolMiB: 0, inactiveSplitMiB: 9216, retries: 14 },
    host: {
      anonMiB: 14336, fileMiB: 1800, shmemMiB: 2048, driverMappedMiB: 512, container: null, heapMiB: 6100, anonMappings: 380,
      malloc: { inUseMiB: 9200, freeMiB: 1900, mmappedMiB: 2400, mmappedChunks: 310, arenas: 33, releasableMiB: 40 },
      python: { allocatedBlocks: 11_800_000 },
      cgroup: SESSION_CGROUP,
    },
  },
  { pid: 60300, ppid: 1, command: 'torchrun --nproc-per-node 1 finetune.py --config configs/lora-8b.yaml', startTicks: 92_099_000, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 300, fileMiB: 200, shmemMiB: 0, driverMappedMiB: 0, container: null, cgroup: SESSION_CGROUP } },
  // A notebook without the companion: its allocator layer is unknown, and says so.
  { pid: 59120, ppid: 1, command: 'python3 -m ipykernel_launcher -f /home/ml/.local/share/jupyter/runtime/kernel-3f1c.json', startTicks: 90_000_000, gpu: 6, driverMiB: 3072, allocator: null, host: { anonMiB: 2200, fileMiB: 700, shmemMiB: 0, driverMappedMiB: 40, container: null, cgroup: SESSION_CGROUP } },
];

const GPUS = [
  { bus: 0x18, uuid: 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17', gpu: 78, mem: 55 },
  { bus: 0x2a, uuid: 'GPU-a3c41f92-1d5e-4b7a-8e20-6f9c3b1d5e48', gpu: 77, mem: 54 },
  { bus: 0x3a, uuid: 'GPU-0e7b2d64-93a8-4f1c-b5d7-1a2e8c9f3b60', gpu: 78, mem: 55 },
  { bus: 0x5d, uuid: 'GPU-7f1d9a3e-6c2b-4e85-a4f0-3d8b5c1e9a72', gpu: 76, mem: 53 },
  { bus: 0x9a, uuid: 'GPU-c92e4b17-58d3-4a0f-9b6e-8e1f2a7d4c39', gpu: 35, mem: 20 },
  { bus: 0xab, uuid: 'GPU-1b6f8d25-e4a9-4c37-8d12-5c0e9b3f7a84', gpu: 12, mem: 5 },
  { bus: 0xba, uuid: 'GPU-e84a3c6d-2f7b-4d19-a0c5-9f6d1e8b2c53', gpu: 97, mem: 61 },
  { bus: 0xdb, uuid: 'GPU-4f2c7e91-b8d6-4a53-9e07-2d5a8c3f1b96', gpu: 0, mem: 0 },
];

export const DEMO_GPU_UUIDS = GPUS.map((g) => g.uuid);

function device(gpu: (typeof GPUS)[number], index: number): ScenarioDevice {
  const processes = DEMO_PROCESSES.filter((p) => p.gpu === index);
  const used = processes.reduce((sum, p) => sum + p.driverMiB * MiB, 0);
  const bar1Used = (processes.length > 0 ? 34 : 2) * MiB;
  return {
    name: 'NVIDIA H100 80GB HBM3',
    uuid: gpu.uuid,
    pci: { domain: 0, bus: gpu.bus, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memory: { total: TOTAL, reserved: RESERVED, used, free: TOTAL - RESERVED - used },
    bar1: { total: BAR1_TOTAL, used: bar1Used, free: BAR1_TOTAL - bar1Used },
    utilization: { gpu: gpu.gpu, memory: gpu.mem },
    migMode: { current: 0, pending: 0 },
    contextBytes: CONTEXT_MIB * MiB,
    processes: processes.map((p) => ({ type: 'compute' as const, pid: p.pid, usedBytes: p.driverMiB * MiB })),
  };
}

export const DEMO_SCENARIO: Scenario = {
  driverVersion: DRIVER_VERSION,
  nvmlVersion: `12.${DRIVER_VERSION}`,
  cudaDriverVersion: 12040,
  devices: GPUS.map(device),
};

/** Unix seconds of the 70B server's start (its log's 07:58, 26 November) and of the 7B server's, an hour earlier. */
const STARTED_70B = Date.UTC(2026, 10, 26, 7, 58, 2) / 1000;

/** The two servers the demo points gpu-layers at, with what their /metrics say (the counters since each started). */
export const DEMO_SERVERS: FakeVllmServer[] = [
  {
    listenerPid: 48100, model: 'meta-llama/Llama-3.1-70B-Instruct', kvCacheUsage: 0.63, running: 18, waiting: 4, numGpuBlocks: 26951,
    counters: { promptTokens: 148_220_410, generationTokens: 31_905_270, requestsFinished: { stop: 96_410, length: 5_902, abort: 211 }, preemptions: 38, prefixCacheQueries: 148_220_410, prefixCacheHits: 71_140_800, startedAt: STARTED_70B },
  },
  {
    listenerPid: 51000, model: 'Qwen/Qwen2.5-7B-Instruct', kvCacheUsage: 0.31, running: 3, waiting: 0, numGpuBlocks: 30512,
    counters: { promptTokens: 20_417_880, generationTokens: 6_822_315, requestsFinished: { stop: 31_276, length: 1_044, abort: 58 }, preemptions: 0, prefixCacheQueries: 20_417_880, prefixCacheHits: 9_310_560, startedAt: STARTED_70B - 3600 },
  },
];

/** The 70B server's startup log, worker lines tagged with their pids as vLLM V1 writes them. */
export const DEMO_LOG = [
  'INFO 11-26 07:58:02 [api_server.py:1896] vLLM API server version 0.11.0',
  ...[48211, 48377, 48378, 48379].flatMap((pid, tp) => [
    `(VllmWorker TP${tp} pid=${pid}) INFO 11-26 07:58:41 [gpu_model_runner.py:2653] Model loading took 33.8820 GiB memory and 21.453118 seconds`,
    `(VllmWorker TP${tp} pid=${pid}) INFO 11-26 07:59:03 [gpu_worker.py:298] Available KV cache memory: 32.90 GiB`,
    `(VllmWorker TP${tp} pid=${pid}) INFO 11-26 07:59:35 [gpu_model_runner.py:3480] Graph capturing finished in 31 secs, took 0.74 GiB`,
  ]),
  '(EngineCore_DP0 pid=48150) INFO 11-26 07:59:04 [kv_cache_utils.py:1087] GPU KV cache size: 431,216 tokens',
  '',
].join('\n');
