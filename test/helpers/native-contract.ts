/**
 * The native contract: what every build of the addon (node-gyp and cmake-js) must do against its
 * own mock libraries. Each build's test file runs this same suite.
 */
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { decodeSample } from '../../src/binding/decode-sample.js';
import { sampleTransferSchema } from '../../src/binding/raw-schema.js';
import { sampleReadingSchema } from '../../src/binding/sample-reading-schema.js';
import { readSampleLayout } from '../../src/binding/sample-layout.js';
import { openProbe } from '../../src/probe/probe.js';
import { createMockHost, type MockHost } from './mock-host.js';
import { requireFile, type NativeBuild } from './paths.js';
import { GiB, host } from './scenarios.js';

export function nativeContract(build: NativeBuild): void {
  describe(`native contract (${build.name} build)`, () => {
    let mock: MockHost;
    const options = () => ({ addonPath: build.addon, nvmlLibrary: build.mockNvml, cudaLibrary: build.mockCuda });

    beforeAll(() => {
      for (const file of [build.addon, build.mockNvml, build.mockCuda]) requireFile(file, `build it (npm ci / npm run build:cmake)`);
      mock = createMockHost(host(2, 3));
    });
    afterAll(() => mock.remove());

    it('returns sample records that decode to valid readings', async () => {
      const addon = createRequire(import.meta.url)(build.addon) as { NativeProbe: new () => any; sampleLayout: unknown };
      const native = new addon.NativeProbe();
      await native.open({ nvmlLibrary: build.mockNvml });
      const transfer = await native.sample();
      await native.close();
      const reading = decodeSample(sampleTransferSchema.parse(transfer), readSampleLayout(addon.sampleLayout));
      expect(() => sampleReadingSchema.parse(reading)).not.toThrow();
      expect(reading.devices).toHaveLength(2);
    });

    it('exports the probe class and the symbol tables', () => {
      const addon = createRequire(import.meta.url)(build.addon) as Record<string, unknown>;
      expect(typeof addon.NativeProbe).toBe('function');
      expect((addon.nvmlSymbols as Record<string, string[]>).computeProcesses).toEqual([
        'nvmlDeviceGetComputeRunningProcesses_v3',
        'nvmlDeviceGetComputeRunningProcesses_v2',
        'nvmlDeviceGetComputeRunningProcesses',
      ]);
      expect((addon.cudaSymbols as Record<string, string[]>).cuDeviceTotalMem).toEqual(['cuDeviceTotalMem_v2']);
    });

    it('samples every device and process of the scenario', async () => {
      const scenario = host(2, 3);
      mock.write(scenario);
      const probe = await openProbe(options());
      try {
        const sample = await probe.sample();
        expect(sample.devices).toHaveLength(2);
        for (const [i, expected] of scenario.devices.entries()) {
          const device = sample.devices[i]!;
          expect(device.uuid).toBe(expected.uuid);
          expect(device.memory.totalBytes).toBe(expected.memory!.total);
          expect(device.memory.usedBytes).toBe(expected.memory!.used);
          expect(device.memory.reservedBytes).toBe(expected.memory!.reserved);
          expect(device.processes?.map((p) => [p.pid, p.usedBytes])).toEqual(
            expected.processes!.map((p) => [p.pid, p.usedBytes]),
          );
          expect(device.cudaOrdinal).toBe(i);
        }
        expect(sample.library.nvml.symbols.memoryInfoV2).toBe('nvmlDeviceGetMemoryInfo_v2');
      } finally {
        await probe.close();
      }
    });

    it('falls back to older symbols when the newest are missing', async () => {
      const scenario = host(1, 2, {
        hide: ['nvmlDeviceGetComputeRunningProcesses_v3', 'nvmlDeviceGetMemoryInfo_v2', 'nvmlInit_v2'],
      });
      mock.write(scenario);
      const probe = await openProbe(options());
      try {
        const sample = await probe.sample();
        expect(sample.library.nvml.symbols.init).toBe('nvmlInit');
        expect(sample.library.nvml.symbols.computeProcesses).toBe('nvmlDeviceGetComputeRunningProcesses_v2');
        const memory = scenario.devices[0]!.memory!;
        expect(sample.devices[0]!.memory.version).toBe(1);
        expect(sample.devices[0]!.memory.usedBytes).toBe((memory.used as number) + (memory.reserved as number));
        expect(sample.devices[0]!.processes?.map((p) => p.pid)).toEqual(scenario.devices[0]!.processes!.map((p) => p.pid));
      } finally {
        await probe.close();
      }
    });

    it('turns an init failure into a typed error', async () => {
      mock.write(host(1, 0, { nvmlInitRc: 9 }));
      await expect(openProbe(options())).rejects.toMatchObject({ code: 'NVML_DRIVER_NOT_LOADED', nvmlReturn: 9 });
    });

    it('keeps the rest of the sample when one field fails', async () => {
      mock.write(host(2, 1, { rc: [{ symbol: 'nvmlDeviceGetBAR1MemoryInfo', rc: 3, device: 1 }] }));
      const probe = await openProbe(options());
      try {
        const sample = await probe.sample();
        expect(sample.devices[1]!.bar1).toBeNull();
        expect(sample.devices[1]!.errors.bar1?.code).toBe('NVML_ERROR_NOT_SUPPORTED');
        expect(sample.devices[0]!.bar1?.totalBytes).toBe(128 * GiB);
        expect(sample.devices[1]!.memory.totalBytes).not.toBeNull();
      } finally {
        await probe.close();
      }
    });
  });
}
