/**
 * Faults through the real addon and the mock: every init failure code becomes its typed error; a
 * failing or missing call leaves the rest of the sample intact; a lost GPU takes only itself.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { GpuLayersError, nvmlErrorCode } from '../../src/errors.js';
import { openProbe } from '../../src/probe/probe.js';
import { KNOWN_NVML_RETURN_CODES, describeNvmlReturn } from '../../src/return-codes.js';
import type { Sample } from '../../src/sample/schema.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { createMockHost, sampleScenario, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild, repoRoot } from '../helpers/paths.js';
import { h100, host } from '../helpers/scenarios.js';

const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: nodeGypBuild.mockCuda };
let mock: MockHost;

const sampleOf = (scenario: Scenario): Promise<Sample> => sampleScenario(mock, scenario, libraries);

beforeAll(() => {
  mock = createMockHost(host(1, 0));
});
afterAll(() => mock.remove());

describe('opening', () => {
  const failures = KNOWN_NVML_RETURN_CODES.filter((code) => code !== 0);

  it.each(failures)('nvmlInit returning %i rejects with its typed error', async (rc) => {
    mock.write(host(1, 0, { nvmlInitRc: rc }));
    const error = await openProbe(libraries).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(GpuLayersError);
    const typed = error as GpuLayersError;
    expect(typed.code).toBe(nvmlErrorCode(rc));
    expect(typed.code).toBe(`NVML_${describeNvmlReturn(rc).name.replace('NVML_ERROR_', '')}`);
    expect(typed.nvmlReturn).toBe(rc);
    expect(typed.library).toBe(nodeGypBuild.mockNvml);
    expect(typed.message).toContain(describeNvmlReturn(rc).name);
  });

  it('names the fixed codes and gives the operator hints', async () => {
    const cases: [number, string, RegExp][] = [
      [9, 'NVML_DRIVER_NOT_LOADED', /kernel module/],
      [4, 'NVML_NO_PERMISSION', /\/dev\/nvidia/],
      [18, 'NVML_LIB_RM_VERSION_MISMATCH', /reboot/],
    ];
    for (const [rc, code, hint] of cases) {
      mock.write(host(1, 0, { nvmlInitRc: rc }));
      await expect(openProbe(libraries)).rejects.toMatchObject({ code, hints: [expect.stringMatching(hint)] });
    }
  });

  it('an unknown future return code keeps its number', async () => {
    mock.write(host(1, 0, { nvmlInitRc: 31 }));
    await expect(openProbe(libraries)).rejects.toMatchObject({ code: 'NVML_31', nvmlReturn: 31 });
  });

  it('a library that is not there is NVML_LIBRARY_NOT_FOUND with the linker message', async () => {
    await expect(openProbe({ nvmlLibrary: '/nonexistent/libnvidia-ml.so.1', cudaLibrary: false })).rejects.toMatchObject({
      code: 'NVML_LIBRARY_NOT_FOUND',
      library: '/nonexistent/libnvidia-ml.so.1',
      message: expect.stringMatching(/No such file/),
    });
  });

  it('a library that is not NVML is NVML_LIBRARY_INVALID', async () => {
    await expect(openProbe({ nvmlLibrary: nodeGypBuild.mockCuda, cudaLibrary: false })).rejects.toMatchObject({
      code: 'NVML_LIBRARY_INVALID',
    });
  });

  it('bad options are INVALID_OPTIONS, before anything is loaded', async () => {
    await expect(openProbe({ timeoutMs: -1 })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(openProbe({ nvmlLibrary: '' })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    await expect(openProbe({ colour: true } as never)).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });

  it('an addon that cannot be loaded is NATIVE_ADDON_UNAVAILABLE', async () => {
    await expect(openProbe({ addonPath: `${repoRoot}/package.json.node` })).rejects.toMatchObject({ code: 'NATIVE_ADDON_UNAVAILABLE' });
  });
});

describe('per-field failures', () => {
  // Each device-level call, the field it fills, and where its reason lands.
  const calls: [string, (s: Sample) => unknown, string][] = [
    ['nvmlDeviceGetName', (s) => s.devices[0]!.name, 'name'],
    ['nvmlDeviceGetUUID', (s) => s.devices[0]!.uuid, 'uuid'],
    ['nvmlDeviceGetPciInfo_v3', (s) => s.devices[0]!.pci, 'pci'],
    ['nvmlDeviceGetBAR1MemoryInfo', (s) => s.devices[0]!.bar1, 'bar1'],
    ['nvmlDeviceGetUtilizationRates', (s) => s.devices[0]!.utilization, 'utilization'],
    ['nvmlDeviceGetMigMode', (s) => s.devices[0]!.mig, 'mig'],
    ['nvmlDeviceGetComputeRunningProcesses_v3', (s) => s.devices[0]!.processes, 'processes'],
  ];

  it.each(calls)('%s failing nulls only its own field', async (symbol, field, key) => {
    const baseline = await sampleOf(host(2, 2));
    const sample = await sampleOf(host(2, 2, { rc: [{ symbol, rc: 999, device: 0 }] }));
    expect(field(sample)).toBeNull();
    expect(sample.devices[0]!.errors[key]).toEqual({ code: 'NVML_ERROR_UNKNOWN', nvmlReturn: 999, message: 'unknown error' });
    expect(field(baseline)).not.toBeNull();
    // Device 1 is untouched, and device 0 keeps what did not fail.
    expect(sample.devices[1]).toEqual(baseline.devices[1]);
    expect(sample.devices[0]!.memory).toEqual(baseline.devices[0]!.memory);
  });

  it('memory falls back to v1 when v2 fails, and says reserved is not split out', async () => {
    const scenario = host(1, 0, { rc: [{ symbol: 'nvmlDeviceGetMemoryInfo_v2', rc: 999 }] });
    const sample = await sampleOf(scenario);
    const memory = scenario.devices[0]!.memory!;
    expect(sample.devices[0]!.memory).toEqual({
      totalBytes: memory.total,
      usedBytes: (memory.used as number) + (memory.reserved as number),
      freeBytes: memory.free,
      reservedBytes: null,
      version: 1,
    });
    expect(sample.devices[0]!.errors['memory.reservedBytes']?.code).toBe('NOT_REPORTED');
  });

  it('a symbol the driver lacks is FUNCTION_NOT_FOUND naming it, the rest intact', async () => {
    const sample = await sampleOf(host(1, 1, { hide: ['nvmlDeviceGetBAR1MemoryInfo'] }));
    expect(sample.library.nvml.symbols.bar1MemoryInfo).toBeNull();
    expect(sample.devices[0]!.bar1).toBeNull();
    expect(sample.devices[0]!.errors.bar1).toEqual({
      code: 'NVML_ERROR_FUNCTION_NOT_FOUND',
      nvmlReturn: 13,
      message: 'this NVML exports none of nvmlDeviceGetBAR1MemoryInfo (an older driver)',
    });
    expect(sample.devices[0]!.processes).toHaveLength(1);
  });

  it('a failed graphics list keeps the compute processes and says which list is missing', async () => {
    const sample = await sampleOf(host(1, 2, { rc: [{ symbol: 'nvmlDeviceGetGraphicsRunningProcesses_v3', rc: 3 }] }));
    expect(sample.devices[0]!.processes).toHaveLength(2);
    expect(sample.devices[0]!.errors['processes.graphics']?.code).toBe('NVML_ERROR_NOT_SUPPORTED');
  });

  it('system calls failing null the driver fields with reasons', async () => {
    const sample = await sampleOf(host(1, 0, { rc: [{ symbol: 'nvmlSystemGetDriverVersion', rc: 3 }] }));
    expect(sample.driver.version).toBeNull();
    expect(sample.errors['driver.version']?.code).toBe('NVML_ERROR_NOT_SUPPORTED');
    expect(sample.driver.nvmlVersion).not.toBeNull();
  });

  it('a failed device count leaves no devices and says why', async () => {
    const sample = await sampleOf(host(2, 0, { rc: [{ symbol: 'nvmlDeviceGetCount_v2', rc: 15 }] }));
    expect(sample.devices).toEqual([]);
    expect(sample.errors.devices?.code).toBe('NVML_ERROR_GPU_IS_LOST');
  });
});

describe('one bad device', () => {
  it('a GPU lost on one device leaves the others intact', async () => {
    const scenario = host(4, 2);
    const baseline = await sampleOf(scenario);
    const sample = await sampleOf({ ...scenario, rc: [{ symbol: '*', rc: 15, device: 2 }] });
    expect(sample.devices).toHaveLength(4);
    expect(sample.devices[2]).toMatchObject({ index: 2, uuid: null, processes: null, errors: { device: { code: 'NVML_ERROR_GPU_IS_LOST' } } });
    for (const i of [0, 1, 3]) expect(sample.devices[i]).toEqual(baseline.devices[i]);
  });

  it('a device NVML may not open (NO_PERMISSION) is skipped with the reason', async () => {
    const sample = await sampleOf(host(2, 1, { rc: [{ symbol: 'nvmlDeviceGetHandleByIndex_v2', rc: 4, device: 0 }] }));
    expect(sample.devices[0]!.errors.device?.code).toBe('NVML_ERROR_NO_PERMISSION');
    expect(sample.devices[1]!.processes).toHaveLength(1);
  });
});

describe('the probe after close', () => {
  it('rejects samples with PROBE_CLOSED and closes twice without complaint', async () => {
    mock.write(host(1, 0));
    const probe = await openProbe(libraries);
    await probe.close();
    await probe.close();
    await expect(probe.sample()).rejects.toMatchObject({ code: 'PROBE_CLOSED' });
  });

  it('shares one native call between concurrent callers', async () => {
    mock.write(host(1, 1));
    const probe = await openProbe(libraries);
    try {
      const [a, b] = [probe.sample(), probe.sample()];
      expect(a).toBe(b);
      const [x, y] = await Promise.all([a, b]);
      expect(x).toBe(y);
    } finally {
      await probe.close();
    }
  });
});
