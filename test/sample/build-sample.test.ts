/** buildSample: the pure step from an addon reading to the public Sample. */
import { describe, expect, it } from 'vitest';

import { buildSample } from '../../src/sample/build-sample.js';
import { sampleSchema } from '../../src/sample/schema.js';
import { context, rawDevice, rawSample, rows } from '../helpers/raw-readings.js';

describe('buildSample', () => {
  it('maps NVML fields to the schema, in bytes, and validates', () => {
    const sample = buildSample(rawSample([rawDevice(0)]), context());
    expect(() => sampleSchema.parse(sample)).not.toThrow();
    expect(sample.takenAt).toBe('2026-11-26T12:00:00.000Z');
    expect(sample.devices[0]).toMatchObject({
      memory: { totalBytes: 1000, usedBytes: 300, freeBytes: 600, reservedBytes: 100, version: 2 },
      bar1: { totalBytes: 64, usedBytes: 4, freeBytes: 60 },
      utilization: { gpuPercent: 50, memoryPercent: 20 },
      processes: [{ pid: 10, usedBytes: 300, types: ['compute'], gpuInstanceId: null, computeInstanceId: null }],
      errors: {},
    });
  });

  it('matches CUDA ordinals by UUID, not by index', () => {
    const sample = buildSample(rawSample([rawDevice(0), rawDevice(1)]), context());
    expect(sample.devices.map((d) => d.cudaOrdinal)).toEqual([1, 0]);
  });

  it('null plus a reason for a failed call, naming a symbol the driver lacks', () => {
    const device = rawDevice(0, { bar1: null, rc: { ...rawDevice(0).rc, bar1: 13 } });
    const sample = buildSample(rawSample([device]), context({ nvmlResolved: { bar1MemoryInfo: null } }));
    expect(sample.devices[0]!.bar1).toBeNull();
    expect(sample.devices[0]!.errors.bar1).toEqual({
      code: 'NVML_ERROR_FUNCTION_NOT_FOUND',
      nvmlReturn: 13,
      message: 'this NVML exports none of nvmlDeviceGetBAR1MemoryInfo (an older driver)',
    });
  });

  it('FUNCTION_NOT_FOUND from a symbol that does exist keeps NVML wording', () => {
    const device = rawDevice(0, { bar1: null, rc: { ...rawDevice(0).rc, bar1: 13 } });
    const sample = buildSample(rawSample([device]), context());
    expect(sample.devices[0]!.errors.bar1?.message).toBe('function not found in this NVML (older driver)');
  });

  it('NaN (not available) and implausible numbers become null with different reasons', () => {
    const device = rawDevice(0, {
      memory: { version: 2, total: 2 ** 60, reserved: null, free: -5, used: 1.5 },
      utilization: { gpu: 101, memory: null },
    });
    const sample = buildSample(rawSample([device]), context());
    const { memory, utilization, errors } = sample.devices[0]!;
    expect(memory).toEqual({ totalBytes: null, usedBytes: null, freeBytes: null, reservedBytes: null, version: 2 });
    expect(utilization).toEqual({ gpuPercent: null, memoryPercent: null });
    expect(errors['memory.totalBytes']?.code).toBe('VALUE_OUT_OF_RANGE');
    expect(errors['memory.reservedBytes']?.code).toBe('VALUE_NOT_AVAILABLE');
    expect(errors['memory.freeBytes']?.code).toBe('VALUE_OUT_OF_RANGE');
    expect(errors['memory.usedBytes']?.code).toBe('VALUE_OUT_OF_RANGE');
    expect(errors['utilization.gpuPercent']?.code).toBe('VALUE_OUT_OF_RANGE');
    expect(errors['utilization.memoryPercent']?.code).toBe('VALUE_NOT_AVAILABLE');
  });

  it('v1 memory: used includes reserved, reserved is null with NOT_REPORTED', () => {
    const sample = buildSample(rawSample([rawDevice(0, { memory: { version: 1, total: 1000, reserved: null, free: 600, used: 400 } })]), context());
    expect(sample.devices[0]!.memory).toEqual({ totalBytes: 1000, usedBytes: 400, freeBytes: 600, reservedBytes: null, version: 1 });
    expect(sample.devices[0]!.errors['memory.reservedBytes']?.code).toBe('NOT_REPORTED');
  });

  it('a failed compute list makes processes null, never a partial list', () => {
    const device = rawDevice(0, {
      processRows: rows([1, 55, 1, NaN, NaN]),
      processLists: [{ rc: 999, rowBytes: 24 }, { rc: 0, rowBytes: 24 }, { rc: 0, rowBytes: 24 }],
    });
    const sample = buildSample(rawSample([device]), context());
    expect(sample.devices[0]!.processes).toBeNull();
    expect(sample.devices[0]!.errors.processes?.code).toBe('NVML_ERROR_UNKNOWN');
  });

  it('implausible rows reported by the addon carry ROWS_IMPLAUSIBLE', () => {
    const device = rawDevice(0, { processRows: rows(), processLists: [{ rc: -2, rowBytes: 24 }, { rc: 0, rowBytes: 24 }, { rc: 0, rowBytes: 24 }] });
    const sample = buildSample(rawSample([device]), context());
    expect(sample.devices[0]!.errors.processes?.code).toBe('ROWS_IMPLAUSIBLE');
  });

  it('merges per pid and MIG instance, taking the footprint once', () => {
    const device = rawDevice(0, {
      processRows: rows([0, 7, 100, 1, 0], [1, 7, 100, 1, 0], [0, 7, 50, 2, 0], [2, 8, NaN, NaN, NaN], [0, 8, 30, NaN, NaN]),
    });
    const processes = buildSample(rawSample([device]), context()).devices[0]!.processes;
    expect(processes).toEqual([
      { pid: 7, usedBytes: 100, types: ['compute', 'graphics'], gpuInstanceId: 1, computeInstanceId: 0 },
      { pid: 7, usedBytes: 50, types: ['compute'], gpuInstanceId: 2, computeInstanceId: 0 },
      { pid: 8, usedBytes: 30, types: ['mps', 'compute'], gpuInstanceId: null, computeInstanceId: null },
    ]);
  });

  it('a device whose handle failed keeps its index and the reason, nothing else', () => {
    const sample = buildSample(rawSample([{ index: 3, rc: { handle: 4 } }]), context());
    expect(sample.devices[0]).toMatchObject({ index: 3, uuid: null, processes: null, mig: null });
    expect(sample.devices[0]!.errors).toEqual({ device: { code: 'NVML_ERROR_NO_PERMISSION', nvmlReturn: 4, message: 'insufficient permissions' } });
  });

  it('derives busId from its parts when only the legacy PCI call answered', () => {
    const raw = rawDevice(0);
    raw.pci = { ...raw.pci!, busId: '', domain: 1, bus: 0xab, device: 2 };
    expect(buildSample(rawSample([raw]), context()).devices[0]!.pci?.busId).toBe('00000001:AB:02.0');
  });

  it('reports a failed device count at the sample level', () => {
    const sample = buildSample(rawSample([], { deviceCount: null, rc: { driverVersion: 0, nvmlVersion: 0, cudaDriverVersion: 0, deviceCount: 1 } }), context());
    expect(sample.errors.devices?.code).toBe('NVML_ERROR_UNINITIALIZED');
  });

  it('says so when NVML reports more devices than were read', () => {
    const sample = buildSample(rawSample([rawDevice(0)], { deviceCount: 5000 }), context());
    expect(sample.devices).toHaveLength(1);
    expect(sample.errors.devices).toMatchObject({ code: 'VALUE_OUT_OF_RANGE', message: expect.stringContaining('5000') });
  });

  it('MIG: devices under the parent, an unreadable slot keeps its reason', () => {
    const parent = rawDevice(0, {
      migMode: { current: 1, pending: 1 },
      rc: { ...rawDevice(0).rc, maxMigDevices: 0, utilization: 3 },
      utilization: null,
      maxMigDevices: 7,
      migDevices: [
        {
          slot: 0,
          rc: { handle: 0, name: 0, uuid: 0, memory: 0, gpuInstanceId: 0, computeInstanceId: 0 },
          name: 'MIG 1g.10gb',
          uuid: 'MIG-00000000-0000-4000-8000-000000000001',
          memory: { version: 2, total: 10, reserved: 0, free: 10, used: 0 },
          processRows: rows(),
          processLists: [{ rc: 0, rowBytes: 24 }, { rc: 0, rowBytes: 24 }, { rc: 0, rowBytes: 24 }],
          gpuInstanceId: 7,
          computeInstanceId: 0,
        },
        { slot: 1, rc: { handle: 999 } },
      ],
    });
    const device = buildSample(rawSample([parent]), context()).devices[0]!;
    expect(device.mig?.enabled).toBe(true);
    expect(device.cudaOrdinal).toBeNull();
    expect(device.mig?.devices[0]).toMatchObject({ slot: 0, gpuInstanceId: 7, computeInstanceId: 0, cudaOrdinal: 0 });
    expect(device.mig?.devices[1]?.errors.device?.code).toBe('NVML_ERROR_UNKNOWN');
  });
});
