/**
 * Every field of a sample, read by the real addon from the mock, against the scenario it was
 * given: several devices, MIG, not-available values, 32-byte rows, the process-list race.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Sample } from '../../src/sample/schema.js';
import { sampleSchema } from '../../src/sample/schema.js';
import { createMockHost, sampleScenario, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { GiB, H100_RESERVED, H100_TOTAL, MiB, h100, host } from '../helpers/scenarios.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';

const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: nodeGypBuild.mockCuda };
let mock: MockHost;

async function sampleOf(scenario: Scenario): Promise<Sample> {
  const sample = await sampleScenario(mock, scenario, libraries);
  expect(() => sampleSchema.parse(sample)).not.toThrow();
  return sample;
}

beforeAll(() => {
  mock = createMockHost(host(1, 0));
});
afterAll(() => mock.remove());

describe('a sample of several devices', () => {
  it('carries versions, identity, PCI, memory, BAR1, utilization and processes', async () => {
    const scenario: Scenario = {
      driverVersion: '550.127.05',
      nvmlVersion: '12.550.127.05',
      cudaDriverVersion: 12040,
      devices: [
        h100(0, [
          { type: 'compute', pid: 4101, usedBytes: 70 * GiB },
          { type: 'graphics', pid: 4102, usedBytes: 12 * MiB },
        ]),
        h100(1, [{ type: 'mps', pid: 4201, usedBytes: 3 * GiB }], { utilization: { gpu: 100, memory: 0 } }),
        h100(2, []),
      ],
    };
    const sample = await sampleOf(scenario);
    expect(sample.schemaVersion).toBe(1);
    expect(sample.driver).toEqual({ version: '550.127.05', nvmlVersion: '12.550.127.05', cudaDriverVersion: 12040 });
    expect(sample.errors).toEqual({});
    expect(sample.cuda).toMatchObject({ available: true, deviceCount: 3, driverVersion: 12040, error: null });
    expect(Date.parse(sample.takenAt)).toBeGreaterThan(Date.now() - 60_000);
    expect(sample.devices.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const [i, input] of scenario.devices.entries()) {
      const device = sample.devices[i]!;
      const pci = input.pci!;
      expect(device.name).toBe(input.name);
      expect(device.uuid).toBe(input.uuid);
      expect(device.pci).toEqual({
        busId: `${pci.domain.toString(16).padStart(8, '0')}:${pci.bus.toString(16).padStart(2, '0')}:00.0`.toUpperCase(),
        domain: pci.domain,
        bus: pci.bus,
        device: pci.device,
        pciDeviceId: pci.pciDeviceId,
        pciSubSystemId: pci.pciSubSystemId,
      });
      expect(device.memory).toEqual({
        totalBytes: input.memory!.total,
        usedBytes: input.memory!.used,
        freeBytes: input.memory!.free,
        reservedBytes: input.memory!.reserved,
        version: 2,
      });
      expect(device.bar1).toEqual({ totalBytes: input.bar1!.total, usedBytes: input.bar1!.used, freeBytes: input.bar1!.free });
      expect(device.utilization).toEqual({ gpuPercent: input.utilization!.gpu, memoryPercent: input.utilization!.memory });
      expect(device.mig).toEqual({ enabled: false, pendingEnabled: false, devices: [] });
      expect(device.errors).toEqual({});
    }
    expect(sample.devices[0]!.processes).toEqual([
      { pid: 4101, usedBytes: 70 * GiB, types: ['compute'], gpuInstanceId: null, computeInstanceId: null },
      { pid: 4102, usedBytes: 12 * MiB, types: ['graphics'], gpuInstanceId: null, computeInstanceId: null },
    ]);
    expect(sample.devices[1]!.processes).toEqual([
      { pid: 4201, usedBytes: 3 * GiB, types: ['mps'], gpuInstanceId: null, computeInstanceId: null },
    ]);
    expect(sample.devices[2]!.processes).toEqual([]);
    expect(sample.library.processRowBytes).toEqual({ compute: 24, graphics: 24, mps: 24 });
  });

  it('merges a process NVML lists as compute and graphics into one', async () => {
    const sample = await sampleOf({
      devices: [
        h100(0, [
          { type: 'compute', pid: 777, usedBytes: 5 * GiB },
          { type: 'graphics', pid: 777, usedBytes: 5 * GiB },
        ]),
      ],
    });
    expect(sample.devices[0]!.processes).toEqual([
      { pid: 777, usedBytes: 5 * GiB, types: ['compute', 'graphics'], gpuInstanceId: null, computeInstanceId: null },
    ]);
  });
});

describe('MIG', () => {
  it('reports MIG devices under their parent with instance ids, memory and processes', async () => {
    const migMemory = { total: 20 * GiB, reserved: 0, used: 9 * GiB, free: 11 * GiB };
    const sample = await sampleOf({
      devices: [
        h100(0, [], {
          migMode: { current: 1, pending: 1 },
          migDevices: [
            { slot: 0, gpuInstanceId: 3, computeInstanceId: 0, uuid: 'MIG-aaaaaaaa-0000-4000-8000-000000000001', memory: migMemory,
              processes: [{ type: 'compute', pid: 5001, usedBytes: 9 * GiB }] },
            { slot: 2, gpuInstanceId: 5, computeInstanceId: 0, uuid: 'MIG-aaaaaaaa-0000-4000-8000-000000000002', memory: migMemory },
          ],
        }),
      ],
    });
    const device = sample.devices[0]!;
    expect(device.mig?.enabled).toBe(true);
    expect(device.utilization).toBeNull();
    expect(device.errors.utilization?.code).toBe('NVML_ERROR_NOT_SUPPORTED');
    expect(device.cudaOrdinal).toBeNull();
    expect(device.errors.cudaOrdinal?.code).toBe('MIG_ENABLED');
    // The parent's list is the aggregate, with the instance ids NVML gives in MIG mode.
    expect(device.processes).toEqual([{ pid: 5001, usedBytes: 9 * GiB, types: ['compute'], gpuInstanceId: 3, computeInstanceId: 0 }]);
    const [first, second] = device.mig!.devices;
    expect(first).toMatchObject({ slot: 0, gpuInstanceId: 3, computeInstanceId: 0, uuid: 'MIG-aaaaaaaa-0000-4000-8000-000000000001' });
    expect(first!.memory).toEqual({ totalBytes: 20 * GiB, usedBytes: 9 * GiB, freeBytes: 11 * GiB, reservedBytes: 0, version: 2 });
    expect(first!.processes).toEqual([{ pid: 5001, usedBytes: 9 * GiB, types: ['compute'], gpuInstanceId: 3, computeInstanceId: 0 }]);
    expect(second).toMatchObject({ slot: 2, gpuInstanceId: 5, processes: [] });
  });
});

describe('values NVML reports as not available', () => {
  it('become null with VALUE_NOT_AVAILABLE, the rest stays', async () => {
    const sample = await sampleOf({
      devices: [
        h100(0, [
          { type: 'compute', pid: 61, usedBytes: 'na' },
          { type: 'compute', pid: 62, usedBytes: GiB },
        ], { memory: { total: H100_TOTAL, reserved: 'na', used: 'na', free: GiB }, utilization: { gpu: 'na', memory: 4 } }),
      ],
    });
    const device = sample.devices[0]!;
    expect(device.memory).toEqual({ totalBytes: H100_TOTAL, usedBytes: null, freeBytes: GiB, reservedBytes: null, version: 2 });
    expect(device.errors['memory.usedBytes']?.code).toBe('VALUE_NOT_AVAILABLE');
    expect(device.errors['memory.reservedBytes']?.code).toBe('VALUE_NOT_AVAILABLE');
    expect(device.utilization).toEqual({ gpuPercent: null, memoryPercent: 4 });
    expect(device.processes?.[0]).toMatchObject({ pid: 61, usedBytes: null, errors: { usedBytes: { code: 'VALUE_NOT_AVAILABLE' } } });
    expect(device.processes?.[1]).toEqual({ pid: 62, usedBytes: GiB, types: ['compute'], gpuInstanceId: null, computeInstanceId: null });
  });

  it('an implausible byte count (above 2^53) is null with VALUE_OUT_OF_RANGE, not a rounded number', async () => {
    const sample = await sampleOf({ devices: [h100(0, [], { bar1: { total: 2n ** 60n, used: 0, free: 0 } })] });
    expect(sample.devices[0]!.bar1?.totalBytes).toBeNull();
    expect(sample.devices[0]!.errors['bar1.totalBytes']?.code).toBe('VALUE_OUT_OF_RANGE');
  });
});

describe('process rows', () => {
  const processes = [
    { type: 'compute' as const, pid: 901, usedBytes: 11 * GiB },
    { type: 'compute' as const, pid: 902, usedBytes: 22 * GiB },
    { type: 'compute' as const, pid: 903, usedBytes: 33 * GiB },
  ];
  const expected = processes.map((p) => [p.pid, p.usedBytes]);

  it('decodes 32-byte _v3 rows on drivers 535.43-535.86', async () => {
    const sample = await sampleOf({ driverVersion: '535.54.03', processRowBytes: 32, devices: [h100(0, processes)] });
    expect(sample.library.processRowBytes.compute).toBe(32);
    expect(sample.devices[0]!.processes?.map((p) => [p.pid, p.usedBytes])).toEqual(expected);
  });

  it('uses 24-byte rows on 535.104 and later', async () => {
    const sample = await sampleOf({ driverVersion: '535.104.05', devices: [h100(0, processes)] });
    expect(sample.library.processRowBytes.compute).toBe(24);
    expect(sample.devices[0]!.processes?.map((p) => [p.pid, p.usedBytes])).toEqual(expected);
  });

  it('recovers when the driver writes another row size than its version suggests', async () => {
    const sample = await sampleOf({ driverVersion: '550.54.15', processRowBytes: 32, devices: [h100(0, processes)] });
    expect(sample.library.processRowBytes.compute).toBe(24);
    expect(sample.devices[0]!.processes?.map((p) => [p.pid, p.usedBytes])).toEqual(expected);
  });

  it('reads the 16-byte rows of the unversioned function on very old drivers', async () => {
    const hide = ['Compute', 'Graphics', 'MPSCompute'].flatMap((k) => [`nvmlDeviceGet${k}RunningProcesses_v3`, `nvmlDeviceGet${k}RunningProcesses_v2`]);
    const sample = await sampleOf({ hide, devices: [h100(0, processes)] });
    expect(sample.library.processRowBytes).toEqual({ compute: 16, graphics: 16, mps: 16 });
    expect(sample.devices[0]!.processes?.map((p) => [p.pid, p.usedBytes, p.gpuInstanceId])).toEqual(expected.map((e) => [...e, null]));
  });

  it('retries when processes appear between the count call and the fill call', async () => {
    const sample = await sampleOf({ grow: { processes: 40, calls: 1 }, devices: [h100(0, processes)] });
    const pids = sample.devices[0]!.processes!.map((p) => p.pid);
    expect(pids).toHaveLength(processes.length + 40);
    expect(pids.slice(0, 3)).toEqual(processes.map((p) => p.pid));
  });

  it('gives up with INSUFFICIENT_SIZE when the list grows on every call, keeping the rest', async () => {
    const sample = await sampleOf({ grow: { processes: 30000, calls: 'always' }, devices: [h100(0, processes), h100(1, [])] });
    const device = sample.devices[0]!;
    expect(device.processes).toBeNull();
    expect(device.errors.processes?.code).toBe('NVML_ERROR_INSUFFICIENT_SIZE');
    expect(device.memory.totalBytes).toBe(H100_TOTAL);
    expect(sample.devices[1]!.memory.reservedBytes).toBe(H100_RESERVED);
  });
});

describe('strings without a terminating NUL', () => {
  it('are never read past the buffer, and are null with STRING_UNTERMINATED (cut at an unknown point)', async () => {
    const sample = await sampleOf({ unterminated: ['nvmlDeviceGetName', 'nvmlSystemGetDriverVersion'], devices: [h100(0)] });
    expect(sample.devices[0]!.name).toBeNull();
    expect(sample.devices[0]!.errors.name?.code).toBe('STRING_UNTERMINATED');
    expect(sample.driver.version).toBeNull();
    expect(sample.errors['driver.version']?.code).toBe('STRING_UNTERMINATED');
  });
});
