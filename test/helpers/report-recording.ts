/**
 * A synthetic one-hour recording for the report tests, built by hand and validated against the
 * real schemas: GPU 0 runs a vLLM worker whose memory outside the allocator creeps (with a
 * stretch where its companion is missing) and, for a while, a process without the companion
 * and with a hostile command line; GPU 1 runs a worker whose allocator cache grows while its
 * host heap leaks. With findings for each.
 */
import { findingSchema, type Finding } from '../../src/diagnosis/finding-schema.js';
import { computeGaps } from '../../src/layers/gaps.js';
import { layeredSampleSchema, type HostLayer, type LayeredDevice, type LayeredProcess, type LayeredSample } from '../../src/layers/schema.js';
import { RECORDING_FORMAT, recordingHeaderSchema, type RecordingHeader } from '../../src/recording/recording-header.js';
import type { FieldErrors } from '../../src/sample/schema.js';
import { SAMPLE_SCHEMA_VERSION } from '../../src/sample/schema-version.js';

export const MiB = 1024 ** 2;
export const GiB = 1024 ** 3;
export const H100_TOTAL = 81_559 * MiB;
export const START_MS = Date.UTC(2026, 10, 26, 2, 0, 0);
export const INTERVAL_MS = 10_000;
export const UUID0 = 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17';
export const UUID1 = 'GPU-9a0b7c6d-1e2f-4a3b-8c4d-5e6f7a8b9c0d';
export const HOSTILE_COMMAND = '<script>alert(1)</script>';

export interface AllocatorReading {
  reserved: number;
  allocated: number;
  privatePools: number | null;
  inactiveSplit: number;
}

export interface HostReading {
  anon: number;
  file: number;
  shmem: number;
  driverMapped: number;
  startTimeTicks: number;
}

export interface ProcessReading {
  pid: number;
  command: string | null;
  driverBytes: number | null;
  contextBytes: number | null;
  allocator: AllocatorReading | null;
  kvCacheBytes?: number | null;
  host: HostReading | null;
}

export function layeredProcess(r: ProcessReading): LayeredProcess {
  const errors: FieldErrors = {};
  const layers: LayeredProcess['layers'] = {
    driverBytes: r.driverBytes,
    contextBytes: r.contextBytes,
    allocator:
      r.allocator === null
        ? null
        : {
            reservedBytes: r.allocator.reserved,
            allocatedBytes: r.allocator.allocated,
            activeBytes: r.allocator.allocated,
            inactiveSplitBytes: r.allocator.inactiveSplit,
            requestedBytes: r.allocator.allocated,
            numAllocRetries: 0,
            numOoms: 0,
            privatePoolBytes: r.allocator.privatePools,
            largestFreeBlockBytes: null,
            privatePoolAllocatedBytes: null,
            lastOom: null,
            source: { file: `/dev/shm/gpu-layers/${r.pid}.json`, writtenAt: '2026-11-26T02:00:00.000Z', ageSeconds: 1, torchVersion: '2.5.1' },
          },
    framework:
      r.kvCacheBytes === undefined
        ? null
        : {
            engine: 'vllm',
            matchedBy: 'listening-socket',
            weightsBytes: 34 * GiB,
            kvCacheBytes: r.kvCacheBytes,
            kvCacheSource: 'log',
            kvCacheUsage: 0.4,
            numGpuBlocks: 4096,
            blockSize: 16,
            kvCacheInUseBytes: r.kvCacheBytes === null ? null : Math.round(r.kvCacheBytes * 0.4),
            kvBlockAlignment: null,
            requestsRunning: 3,
            requestsWaiting: 0,
            counters: null,
            load: null,
            cudaGraphBytes: 700 * MiB,
            nonTorchBytes: 5 * GiB,
            sources: { metrics: null, log: '/var/log/vllm.log' },
          },
  };
  const gaps = computeGaps(layers, errors);
  let host: HostLayer | null = null;
  if (r.host !== null) {
    const h = r.host;
    host = {
      rssBytes: h.anon + h.file + h.shmem,
      anonBytes: h.anon,
      fileBytes: h.file,
      shmemBytes: h.shmem,
      driverMappedBytes: h.driverMapped,
      heapBytes: null,
      anonMappingsBytes: null,
      anonMappingsCount: null,
      malloc: null,
      python: null,
      outsideMallocBytes: null,
      container: null,
      containerId: null,
      podUid: null,
      nspid: [r.pid],
      startTimeTicks: h.startTimeTicks,
      errors: {},
    };
  }
  return { pid: r.pid, usedBytes: r.driverBytes, types: ['compute'], gpuInstanceId: null, computeInstanceId: null, command: r.command, errors, layers, gaps, host, kubernetes: null };
}

export function layeredDevice(index: number, uuid: string, processes: LayeredProcess[], unaccountedBytes: number): LayeredDevice {
  const processUsed = processes.reduce((sum, p) => sum + (p.usedBytes ?? 0), 0);
  const used = processUsed + unaccountedBytes;
  const reserved = 512 * MiB;
  return {
    index,
    uuid,
    name: 'NVIDIA H100 80GB HBM3',
    cudaOrdinal: index,
    pci: { busId: `00000000:1${index}:00.0`, domain: 0, bus: 0x18 + index, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0 },
    memory: { totalBytes: H100_TOTAL, usedBytes: used, freeBytes: H100_TOTAL - used - reserved, reservedBytes: reserved, version: 2 },
    bar1: null,
    utilization: { gpuPercent: 60, memoryPercent: 30 },
    mig: null,
    processes,
    errors: {},
    contextBytes: 512 * MiB,
    unattributedBytes: processes.some((p) => p.usedBytes === null) ? null : unaccountedBytes,
  };
}

export function layeredSample(takenAtMs: number, devices: LayeredDevice[]): LayeredSample {
  const sample: LayeredSample = {
    schemaVersion: SAMPLE_SCHEMA_VERSION,
    takenAt: new Date(takenAtMs).toISOString(),
    durationMs: 0.4,
    driver: { version: '550.127.05', nvmlVersion: '12.550.127.05', cudaDriverVersion: 12040 },
    library: {
      nvml: { requested: 'libnvidia-ml.so.1', loadedPath: '/usr/lib/x86_64-linux-gnu/libnvidia-ml.so.1', symbols: {} },
      cuda: null,
      processRowBytes: { compute: 32, graphics: 32, mps: 32 },
    },
    cuda: { available: true, driverVersion: 12040, deviceCount: devices.length, error: null },
    devices,
    errors: {},
    sources: {
      companion: { location: '/dev/shm/gpu-layers', ok: true, error: null },
      vllmMetrics: [],
      vllmLog: null,
      hfConfig: null,
      calibration: { location: '/root/.cache/gpu-layers/context-calibration.json', ok: true, error: null },
      podResources: null,
    },
    exits: null,
  };
  return layeredSampleSchema.parse(sample);
}

export function recordingHeader(overrides: Partial<RecordingHeader> = {}): RecordingHeader {
  return recordingHeaderSchema.parse({
    format: RECORDING_FORMAT,
    schemaVersion: SAMPLE_SCHEMA_VERSION,
    gpuLayersVersion: '0.1.0',
    host: 'gpu-node-17',
    startedAt: new Date(START_MS).toISOString(),
    intervalMs: INTERVAL_MS,
    driverVersion: '550.127.05',
    nvmlVersion: '12.550.127.05',
    cudaDriverVersion: 12040,
    ...overrides,
  });
}

export const SAMPLES = 360;
/** Samples of GPU 0's worker with no companion file (allocator layer and gaps unknown). */
export const COMPANION_MISSING = { from: 100, to: 120 };
/** Samples during which the hostile process holds memory on GPU 0. */
export const HOSTILE_ALIVE = { from: 200, to: 300 };

export function timeOf(sample: number): number {
  return START_MS + sample * INTERVAL_MS;
}

function gpu0(i: number): LayeredDevice {
  const creep = Math.round((2 * GiB * i) / SAMPLES / MiB) * MiB;
  const companion = i < COMPANION_MISSING.from || i >= COMPANION_MISSING.to;
  const processes = [
    layeredProcess({
      pid: 4242,
      command: 'python3 -m vllm.entrypoints.openai.api_server --model meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 2 --port 8000',
      driverBytes: 66 * GiB + creep,
      contextBytes: 512 * MiB,
      allocator: companion ? { reserved: 60 * GiB, allocated: 52 * GiB, privatePools: 768 * MiB, inactiveSplit: 200 * MiB } : null,
      kvCacheBytes: 16 * GiB,
      host: { anon: 6 * GiB, file: 2 * GiB, shmem: 400 * MiB, driverMapped: 70 * MiB, startTimeTicks: 1000 },
    }),
  ];
  if (i >= HOSTILE_ALIVE.from && i < HOSTILE_ALIVE.to) {
    processes.push(layeredProcess({ pid: 5151, command: HOSTILE_COMMAND, driverBytes: 1536 * MiB, contextBytes: 512 * MiB, allocator: null, host: null }));
  }
  return layeredDevice(0, UUID0, processes, 300 * MiB);
}

function gpu1(i: number): LayeredDevice {
  const growth = Math.round((10 * GiB * i) / SAMPLES / MiB) * MiB;
  const leak = Math.round((2 * GiB * i) / SAMPLES / MiB) * MiB;
  const reserved = 60 * GiB + growth;
  return layeredDevice(
    1,
    UUID1,
    [
      layeredProcess({
        pid: 4343,
        command: 'VLLM::Worker_TP1',
        driverBytes: reserved + 6 * GiB,
        contextBytes: 512 * MiB,
        allocator: { reserved, allocated: 50 * GiB, privatePools: 768 * MiB, inactiveSplit: Math.round(growth * 0.6) },
        kvCacheBytes: 16 * GiB,
        host: { anon: 6 * GiB + leak, file: 2 * GiB, shmem: 400 * MiB, driverMapped: 70 * MiB, startTimeTicks: 1001 },
      }),
    ],
    100 * MiB,
  );
}

export function incidentSamples(): LayeredSample[] {
  return Array.from({ length: SAMPLES }, (_, i) => layeredSample(timeOf(i), [gpu0(i), gpu1(i)]));
}

export function incidentFindings(): Finding[] {
  const iso = (sample: number) => new Date(timeOf(sample)).toISOString();
  const findings: Finding[] = [
    {
      id: 'cuda-graph-creep',
      severity: 'critical',
      confidence: 0.91,
      title: 'Memory outside the PyTorch allocator creeps up',
      summary: 'pid 4242 holds 2.0 GiB more on GPU 0 than an hour ago while its allocator stayed flat: CUDA graphs or NCCL buffers, not tensors.',
      subject: { deviceIndex: 0, uuid: UUID0, pid: 4242, command: 'python3 -m vllm.entrypoints.openai.api_server' },
      window: { from: iso(0), to: iso(SAMPLES - 1) },
      at: iso(30),
      evidence: [
        { series: 'layers.driverBytes', unit: 'bytes', first: 66 * GiB, last: 68 * GiB, slopePerHour: 2 * GiB, fit: 0.99, samples: 340, note: 'the driver figure grows steadily' },
        { series: 'layers.allocator.reservedBytes', unit: 'bytes', first: 60 * GiB, last: 60 * GiB, slopePerHour: 0, fit: null, samples: 340, note: 'the allocator is flat' },
      ],
      fix: 'Capture fewer CUDA graph sizes (--cuda-graph-sizes) or run with --enforce-eager to confirm; upgrade to a vLLM that frees graph pools.',
    },
    {
      id: 'allocator-fragmentation',
      severity: 'warning',
      confidence: 0.74,
      title: 'Allocator cache grows at low load',
      summary: 'Reserved minus allocated grew by 10 GiB while few requests ran: free blocks are trapped in split segments.',
      subject: { deviceIndex: 1, uuid: UUID1, pid: 4343, command: 'VLLM::Worker_TP1' },
      window: { from: iso(0), to: iso(SAMPLES - 1) },
      at: iso(60),
      evidence: [
        { series: 'gaps.allocatorCachedBytes', unit: 'bytes', first: 9 * GiB, last: 19 * GiB, slopePerHour: 10 * GiB, fit: 0.97, samples: 360, note: 'cached free blocks grow' },
        { series: 'gaps.fragmentationRatio', unit: 'ratio', first: 0.01, last: 0.09, slopePerHour: 0.08, fit: 0.95, samples: 360, note: 'share of reserved trapped in split blocks' },
      ],
      fix: 'Set PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True; lower gpu_memory_utilization to leave room for prefill.',
    },
    {
      id: 'host-heap-leak',
      severity: 'warning',
      confidence: 0.66,
      title: 'Anonymous RSS grows steadily',
      summary: 'The heap of pid 4343 grows by about 2 GiB per hour.',
      subject: { deviceIndex: 1, uuid: UUID1, pid: 4343, command: 'VLLM::Worker_TP1' },
      window: { from: iso(0), to: iso(SAMPLES - 1) },
      at: iso(90),
      evidence: [{ series: 'host.anonBytes', unit: 'bytes', first: 6 * GiB, last: 8 * GiB, slopePerHour: 2 * GiB, fit: 0.98, samples: 360, note: 'anonymous memory grows' }],
      fix: 'Profile the heap (memray, tracemalloc) of the API server process.',
    },
    {
      id: 'idle-growth',
      severity: 'info',
      confidence: 0.4,
      title: 'Device memory grows while idle',
      summary: 'GPU 0 used memory grew while no requests ran.',
      subject: { deviceIndex: 0, uuid: UUID0, pid: null, command: null },
      window: { from: iso(200), to: iso(300) },
      at: iso(200),
      evidence: [{ series: 'memory.usedBytes', unit: 'bytes', first: 66 * GiB, last: 69 * GiB, slopePerHour: 1.5 * GiB, fit: 0.8, samples: 100, note: 'used grows' }],
      fix: 'Check what started at this time.',
    },
  ];
  return findings.map((f) => findingSchema.parse(f));
}
