/**
 * The built-in demo host: eight H100 80GB GPUs serving LLMs with vLLM (a 70B model with tensor
 * parallelism 4, a 7B chat model, an embedding model), a fine-tuning job and one idle GPU. The
 * figures follow what such a host shows: vLLM workers take gpu_memory_utilization of the card,
 * the driver reserves about half a GiB per GPU. Everything here is mock data, labelled as such.
 */
import type { Scenario, ScenarioDevice } from '../mock/scenario-schema.js';

const TOTAL = 85_520_809_984; // 81559 MiB, an H100 80GB HBM3 as NVML reports it
const RESERVED = 570_425_344; // 544 MiB held by the driver and firmware
const BAR1_TOTAL = 137_438_953_472;
const MiB = 1024 * 1024;

interface DemoProcess {
  pid: number;
  usedBytes: number;
  command: string;
}

const VLLM_70B = 'vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 4 --gpu-memory-utilization 0.90 --port 8000';
const VLLM_WORKER = 'python3 -c from multiprocessing.spawn import spawn_main; spawn_main(tracker_fd=7, pipe_handle=12) --multiprocessing-fork';

const GPUS: { bus: number; uuid: string; gpu: number; mem: number; processes: DemoProcess[] }[] = [
  { bus: 0x18, uuid: 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17', gpu: 78, mem: 55, processes: [{ pid: 48211, usedBytes: 76_742_000_640, command: VLLM_70B }] },
  { bus: 0x2a, uuid: 'GPU-a3c41f92-1d5e-4b7a-8e20-6f9c3b1d5e48', gpu: 77, mem: 54, processes: [{ pid: 48377, usedBytes: 76_608_831_488, command: VLLM_WORKER }] },
  { bus: 0x3a, uuid: 'GPU-0e7b2d64-93a8-4f1c-b5d7-1a2e8c9f3b60', gpu: 78, mem: 55, processes: [{ pid: 48378, usedBytes: 76_608_831_488, command: VLLM_WORKER }] },
  { bus: 0x5d, uuid: 'GPU-7f1d9a3e-6c2b-4e85-a4f0-3d8b5c1e9a72', gpu: 76, mem: 53, processes: [{ pid: 48379, usedBytes: 76_608_831_488, command: VLLM_WORKER }] },
  {
    bus: 0x9a, uuid: 'GPU-c92e4b17-58d3-4a0f-9b6e-8e1f2a7d4c39', gpu: 35, mem: 20,
    processes: [{ pid: 51044, usedBytes: 42_534_387_712, command: 'vllm serve Qwen/Qwen2.5-7B-Instruct --gpu-memory-utilization 0.50 --port 8001' }],
  },
  {
    bus: 0xab, uuid: 'GPU-1b6f8d25-e4a9-4c37-8d12-5c0e9b3f7a84', gpu: 12, mem: 5,
    processes: [{ pid: 51210, usedBytes: 25_740_640_256, command: 'vllm serve BAAI/bge-m3 --task embed --gpu-memory-utilization 0.30 --port 8002' }],
  },
  {
    bus: 0xba, uuid: 'GPU-e84a3c6d-2f7b-4d19-a0c5-9f6d1e8b2c53', gpu: 97, mem: 61,
    processes: [
      { pid: 60332, usedBytes: 55_834_574_848, command: 'torchrun --nproc-per-node 1 finetune.py --config configs/lora-8b.yaml' },
      { pid: 59120, usedBytes: 3_221_225_472, command: 'python3 -m ipykernel_launcher -f /home/ml/.local/share/jupyter/runtime/kernel-3f1c.json' },
    ],
  },
  { bus: 0xdb, uuid: 'GPU-4f2c7e91-b8d6-4a53-9e07-2d5a8c3f1b96', gpu: 0, mem: 0, processes: [] },
];

function device(gpu: (typeof GPUS)[number]): ScenarioDevice {
  const used = gpu.processes.reduce((sum, p) => sum + p.usedBytes, 0);
  return {
    name: 'NVIDIA H100 80GB HBM3',
    uuid: gpu.uuid,
    pci: { domain: 0, bus: gpu.bus, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memory: { total: TOTAL, reserved: RESERVED, used, free: TOTAL - RESERVED - used },
    bar1: { total: BAR1_TOTAL, used: (gpu.processes.length > 0 ? 34 : 2) * MiB, free: BAR1_TOTAL - (gpu.processes.length > 0 ? 34 : 2) * MiB },
    utilization: { gpu: gpu.gpu, memory: gpu.mem },
    migMode: { current: 0, pending: 0 },
    processes: gpu.processes.map((p) => ({ type: 'compute' as const, pid: p.pid, usedBytes: p.usedBytes })),
  };
}

export const DEMO_SCENARIO: Scenario = {
  driverVersion: '550.127.05',
  nvmlVersion: '12.550.127.05',
  cudaDriverVersion: 12040,
  devices: GPUS.map(device),
};

/** pid -> command line, for the demo's own /proc stand-in (the pids exist only in the mock). */
export const DEMO_COMMANDS: ReadonlyMap<number, string> = new Map(
  GPUS.flatMap((gpu) => gpu.processes.map((p) => [p.pid, p.command] as const)),
);
