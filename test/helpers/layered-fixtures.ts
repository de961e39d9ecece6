/** Hand-built inputs of the join (a two-GPU sample, companion results, a vLLM layer, a calibration) for the pure-function tests. */
import type { CalibrationEntry } from '../../src/sources/calibration-cache.js';
import type { LayerInputs } from '../../src/layers/join.js';
import type { FrameworkLayer, HostLayer, LayeredProcess, LayeredSample } from '../../src/layers/schema.js';
import type { FrameworkResult } from '../../src/layers/vllm-attribution.js';
import { buildSample } from '../../src/sample/build-sample.js';
import type { Sample } from '../../src/sample/schema.js';
import { missingCompanion, type CompanionResult } from '../../src/sources/companion.js';
import { context, rawDevice, rawSample, rows } from './raw-readings.js';

export const UUID0 = 'GPU-00000000-0000-4000-8000-000000000000';
export const UUID1 = 'GPU-00000000-0000-4000-8000-000000000001';
export const NOW_S = Date.UTC(2026, 10, 26, 12, 0, 0) / 1000;

// Device 0: used 300, pid 10 holds 200 and pid 20 holds 50 (50 unaccounted). Device 1: pid 11 holds 300.
export function sample(): Sample {
  return buildSample(
    rawSample([
      rawDevice(0, { processRows: rows([0, 10, 200, NaN, NaN], [0, 20, 50, NaN, NaN]) }),
      rawDevice(1, { processRows: rows([0, 11, 300, NaN, NaN]) }),
    ]),
    context(),
  );
}

export function companion(pid: number, uuid: string, stats: Record<string, number>, privatePoolBytes: number | null): CompanionResult {
  return {
    ok: true,
    file: `/stats/${pid}.json`,
    ageSeconds: 1.5,
    document: {
      format: 'gpu-layers-companion',
      version: 1,
      pid,
      startTimeTicks: 4242,
      writtenAt: NOW_S - 1.5,
      intervalSeconds: 2,
      torchVersion: '2.5.1',
      devices: [{ index: 0, uuid, name: 'NVIDIA H100 80GB HBM3', stats, privatePoolBytes }],
      errors: [],
    },
  };
}

export const host10: HostLayer = {
  rssBytes: 4000,
  anonBytes: 3000,
  fileBytes: 900,
  shmemBytes: 100,
  driverMappedBytes: 64,
  heapBytes: 2000,
  anonMappingsBytes: 900,
  anonMappingsCount: 12,
  malloc: null,
  python: null,
  outsideMallocBytes: null,
  container: null,
  containerId: null,
  podUid: null,
  nspid: [10],
  startTimeTicks: 4242,
  errors: {},
};

export const vllmLayer: FrameworkLayer = {
  engine: 'vllm',
  matchedBy: 'listening-socket',
  weightsBytes: 100,
  kvCacheBytes: 50,
  kvCacheSource: 'log',
  kvCacheUsage: 0.25,
  numGpuBlocks: 5,
  blockSize: 16,
  kvCacheInUseBytes: 13,
  kvBlockAlignment: null,
  requestsRunning: 1,
  requestsWaiting: 0,
  counters: null,
  load: null,
  cudaGraphBytes: 8,
  nonTorchBytes: 12,
  sources: { metrics: null, log: '/vllm.log' },
};

export const calibration: CalibrationEntry = { uuid: UUID0, name: 'NVIDIA H100 80GB HBM3', driverVersion: '550.54.15', moduleLoading: 'LAZY', contextBytes: 20, measuredAt: '2026-11-26T11:00:00.000Z' };

export function inputs(overrides: Partial<LayerInputs> = {}): LayerInputs {
  return {
    host: new Map([[10, host10]]),
    companion: new Map<number, CompanionResult>([
      [10, companion(10, UUID0, { 'reserved_bytes.all.current': 120, 'allocated_bytes.all.current': 90, 'inactive_split_bytes.all.current': 6, num_ooms: 0 }, 10)],
      [20, missingCompanion('/stats', 20)],
      [11, companion(11, UUID0, { 'reserved_bytes.all.current': 280 }, null)],
    ]),
    framework: new Map<number, FrameworkResult>([[10, { layer: vllmLayer, errors: {} }]]),
    calibration: { entries: [calibration], moduleLoading: 'LAZY', error: null },
    sources: {
      companion: { location: '/stats', ok: true, error: null },
      vllmMetrics: [],
      vllmLog: { location: '/vllm.log', ok: true, error: null },
      hfConfig: null,
      calibration: { location: '/cache/context-calibration.json', ok: true, error: null },
    },
    ...overrides,
  };
}

export function processOf(layered: LayeredSample, pid: number): LayeredProcess {
  const found = layered.devices.flatMap((d) => d.processes ?? []).find((p) => p.pid === pid);
  if (found === undefined) throw new Error(`no process ${pid}`);
  return found;
}

