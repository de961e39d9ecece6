/** Hand-built addon readings for the pure-function tests: what the addon would hand over. */
import type { RawOpen } from '../../src/binding/raw-schema.js';
import type { RawDevice, RawSample } from '../../src/binding/sample-reading-schema.js';
import type { SampleContext } from '../../src/sample/build-sample.js';

export function rows(...list: [kind: number, pid: number, used: number, gi: number, ci: number][]): Float64Array<ArrayBuffer> {
  return Float64Array.from(list.flat());
}

const ok3 = [
  { rc: 0, rowBytes: 24 },
  { rc: 0, rowBytes: 24 },
  { rc: 0, rowBytes: 24 },
] as [{ rc: number; rowBytes: number }, { rc: number; rowBytes: number }, { rc: number; rowBytes: number }];

export function rawDevice(index: number, overrides: Partial<RawDevice> = {}): RawDevice {
  return {
    index,
    rc: { handle: 0, name: 0, uuid: 0, memory: 0, pci: 0, bar1: 0, utilization: 0, migMode: 0, maxMigDevices: -1 },
    name: 'NVIDIA H100 80GB HBM3',
    uuid: `GPU-00000000-0000-4000-8000-00000000000${index}`,
    memory: { version: 2, total: 1000, reserved: 100, free: 600, used: 300 },
    processRows: rows([0, 10 + index, 300, NaN, NaN]),
    processLists: structuredClone(ok3),
    pci: { busId: `00000000:1${index}:00.0`, busIdLegacy: `0000:1${index}:00.0`, domain: 0, bus: 0x10 + index, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0 },
    bar1: { total: 64, free: 60, used: 4 },
    utilization: { gpu: 50, memory: 20 },
    migMode: { current: 0, pending: 0 },
    maxMigDevices: null,
    migDevices: [],
    ...overrides,
  };
}

export function rawSample(devices: RawDevice[], overrides: Partial<RawSample> = {}): RawSample {
  return {
    startedAtMs: Date.UTC(2026, 10, 26, 12, 0, 0),
    durationMs: 0.25,
    driverVersion: '550.54.15',
    nvmlVersion: '12.550.54.15',
    cudaDriverVersion: 12040,
    deviceCount: devices.length,
    rc: { driverVersion: 0, nvmlVersion: 0, cudaDriverVersion: 0, deviceCount: 0 },
    devices,
    ...overrides,
  };
}

export const CANDIDATES: Record<string, string[]> = {
  bar1MemoryInfo: ['nvmlDeviceGetBAR1MemoryInfo'],
  computeProcesses: ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetComputeRunningProcesses_v2', 'nvmlDeviceGetComputeRunningProcesses'],
  graphicsProcesses: ['nvmlDeviceGetGraphicsRunningProcesses_v3'],
  mpsComputeProcesses: ['nvmlDeviceGetMPSComputeRunningProcesses_v3'],
  memoryInfo: ['nvmlDeviceGetMemoryInfo'],
};

export function context(overrides: Partial<SampleContext> = {}): SampleContext {
  return {
    library: {
      nvml: { requested: 'libnvidia-ml.so.1', loadedPath: '/usr/lib/libnvidia-ml.so.1', symbols: {} },
      cuda: null,
      processRowBytes: { compute: 24, graphics: 24, mps: 24 },
    },
    cuda: { available: true, driverVersion: 12040, deviceCount: 2, error: null },
    cudaDevices: [
      { ordinal: 0, name: 'H100', uuidHex: '00000000000040008000000000000001', totalBytes: 1000, pci: { domain: 0, bus: 0x11, device: 0 } },
      { ordinal: 1, name: 'H100', uuidHex: '00000000000040008000000000000000', totalBytes: 1000, pci: { domain: 0, bus: 0x10, device: 0 } },
    ],
    nvmlResolved: { bar1MemoryInfo: 'nvmlDeviceGetBAR1MemoryInfo', computeProcesses: 'nvmlDeviceGetComputeRunningProcesses_v3' },
    nvmlCandidates: CANDIDATES,
    ...overrides,
  };
}

export function rawOpen(overrides: Partial<RawOpen> = {}): RawOpen {
  return {
    nvml: { requested: 'libnvidia-ml.so.1', loaded: true, loadError: null, loadedPath: '/usr/lib/libnvidia-ml.so.1', symbols: { init: 'nvmlInit_v2' } },
    initRc: 0,
    initErrorString: null,
    driverVersion: '550.54.15',
    processRowBytes: [24, 24, 24],
    cuda: {
      requested: true,
      library: { requested: 'libcuda.so.1', loaded: true, loadError: null, loadedPath: '/usr/lib/libcuda.so.1', symbols: { cuInit: 'cuInit' } },
      initRc: 0,
      driverVersion: 12040,
      deviceCount: 1,
      rc: { driverVersion: 0, deviceCount: 0 },
      devices: [
        { ordinal: 0, rc: { handle: 0, name: 0, uuidHex: 0, totalMem: 0, pciDomain: 0, pciBus: 0, pciDevice: 0 }, name: 'H100', uuidHex: 'ab'.repeat(16), totalMem: 80, pciDomain: 0, pciBus: 24, pciDevice: 0 },
      ],
    },
    ...overrides,
  };
}
