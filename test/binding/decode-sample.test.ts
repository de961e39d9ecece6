/** decodeSample and readSampleLayout: fields found by name, transfers that do not add up refused. */
import { describe, expect, it } from 'vitest';

import { decodeSample } from '../../src/binding/decode-sample.js';
import type { SampleLayoutNames, SampleTransfer } from '../../src/binding/raw-schema.js';
import { sampleReadingSchema } from '../../src/binding/sample-reading-schema.js';
import { PROCESS_ROW_COLUMNS, readSampleLayout } from '../../src/binding/sample-layout.js';

const COMMON = ['handleRc', 'nameRc', 'uuidRc', 'memoryRc', 'memoryVersion', 'memoryTotal', 'memoryReserved', 'memoryFree', 'memoryUsed', 'computeProcessesRc', 'computeRowBytes', 'graphicsProcessesRc', 'graphicsRowBytes', 'mpsProcessesRc', 'mpsRowBytes', 'processRowStart', 'processRowCount'];

/** A layout in a different order from the addon's, with an extra field TypeScript does not read. */
const names: SampleLayoutNames = {
  system: ['deviceCount', 'deviceCountRc', 'startedAtMs', 'durationMs', 'driverVersionRc', 'nvmlVersionRc', 'cudaDriverVersionRc', 'cudaDriverVersion'],
  device: ['futureField', ...['pciRc', 'pciDomain', 'pciBus', 'pciDevice', 'pciDeviceId', 'pciSubSystemId', 'bar1Rc', 'bar1Total', 'bar1Free', 'bar1Used', 'utilizationRc', 'utilizationGpu', 'utilizationMemory', 'migModeRc', 'migModeCurrent', 'migModePending', 'maxMigDevicesRc', 'maxMigDevices'], ...COMMON.slice().reverse(), 'index'],
  migDevice: [...COMMON, 'gpuInstanceIdRc', 'gpuInstanceId', 'computeInstanceIdRc', 'computeInstanceId', 'slot', 'parent'],
  processRow: [...PROCESS_ROW_COLUMNS],
  systemStrings: ['nvmlVersion', 'driverVersion'],
  deviceStrings: ['busIdLegacy', 'busId', 'uuid', 'name'],
  migStrings: ['uuid', 'name'],
};
const layout = readSampleLayout(names);

function record(fieldNames: string[], values: Record<string, number>): number[] {
  return fieldNames.map((name) => values[name] ?? 0);
}

function transfer(): SampleTransfer {
  const device = record(names.device, {
    index: 0, memoryVersion: 2, memoryTotal: 100, memoryReserved: NaN, memoryFree: 60, memoryUsed: 40, computeRowBytes: 24,
    processRowStart: 0, processRowCount: 1, pciBus: 0x18, bar1Total: 8, utilizationGpu: 7, migModeCurrent: 1, migModePending: 1, maxMigDevices: 7,
  });
  const mig = record(names.migDevice, { parent: 0, slot: 3, memoryVersion: 2, memoryTotal: 10, processRowStart: 1, processRowCount: 1, gpuInstanceId: 5 });
  return {
    system: Float64Array.from(record(names.system, { startedAtMs: 1000, durationMs: 0.5, cudaDriverVersion: 12040, deviceCount: 1 })),
    systemStrings: ['12.550.54.15', '550.54.15'],
    devices: Float64Array.from(device),
    deviceStrings: ['0000:18:00.0', '00000000:18:00.0', 'GPU-x', 'H100'],
    migDevices: Float64Array.from(mig),
    migStrings: ['MIG-y', 'MIG 1g'],
    processRows: Float64Array.from([0, 42, 40, NaN, NaN, 0, 43, 9, 5, 0]),
  };
}

describe('decodeSample', () => {
  it('reads every field by name, whatever the order, into a valid reading', () => {
    const reading = decodeSample(transfer(), layout);
    expect(() => sampleReadingSchema.parse(reading)).not.toThrow();
    expect(reading).toMatchObject({ startedAtMs: 1000, driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: 12040, deviceCount: 1 });
    const device = reading.devices[0]!;
    expect(device).toMatchObject({
      index: 0,
      name: 'H100',
      uuid: 'GPU-x',
      memory: { version: 2, total: 100, reserved: null, free: 60, used: 40 },
      pci: { busId: '00000000:18:00.0', busIdLegacy: '0000:18:00.0', bus: 0x18 },
      bar1: { total: 8 },
      utilization: { gpu: 7 },
      migMode: { current: 1, pending: 1 },
      maxMigDevices: 7,
    });
    expect([...device.processRows!]).toEqual([0, 42, 40, NaN, NaN]);
    expect(device.migDevices?.[0]).toMatchObject({ slot: 3, name: 'MIG 1g', uuid: 'MIG-y', gpuInstanceId: 5, memory: { total: 10 } });
    expect([...device.migDevices![0]!.processRows!]).toEqual([0, 43, 9, 5, 0]);
  });

  it('refuses a transfer whose lengths do not add up', () => {
    const t = transfer();
    expect(() => decodeSample({ ...t, deviceStrings: ['only one'] }, layout)).toThrow(expect.objectContaining({ code: 'NATIVE_OUTPUT_INVALID' }));
    expect(() => decodeSample({ ...t, devices: t.devices.subarray(1) }, layout)).toThrow(/not a whole number/);
    expect(() => decodeSample({ ...t, processRows: t.processRows.subarray(0, 5) }, layout)).toThrow(/past the end/);
  });

  it('a field the addon does not export is a build mismatch, reported before any sample', () => {
    expect(() => readSampleLayout({ ...names, device: names.device.filter((n) => n !== 'bar1Total') })).toThrow(
      expect.objectContaining({ code: 'NATIVE_ADDON_UNAVAILABLE', message: expect.stringContaining('"bar1Total"') }),
    );
    expect(() => readSampleLayout({ ...names, processRow: ['pid', 'kind', 'usedGpuMemory', 'gpuInstanceId', 'computeInstanceId'] })).toThrow(/process rows/);
  });
});
