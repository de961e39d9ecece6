/**
 * The CUDA side: CUDA ordinals matched to NVML devices by UUID in CUDA's own order, under
 * CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER, with MIG; a CUDA driver that cannot list devices;
 * and the proof, from the mock's call trace, that the probe never creates a CUDA context.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openProbe } from '../../src/probe/probe.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { writeScenario } from '../../src/mock-host/scenario-text.js';
import { probeJson } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild, python } from '../helpers/paths.js';
import { GiB, h100, host } from '../helpers/scenarios.js';

const CONTEXT_CALLS = /^(cuDevicePrimaryCtxRetain|cuCtxCreate\w*|cuCtxSetCurrent|cuMemGetInfo\w*) /;
const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: nodeGypBuild.mockCuda };
let mock: MockHost;

beforeAll(() => {
  mock = createMockHost(host(3, 1, { cudaOrder: [2, 0, 1] }), { trace: true });
});
afterAll(() => mock.remove());

/** Writes a scenario to its own file and returns the environment a child probe needs. */
function childEnv(name: string, scenario: Scenario, extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const file = path.join(mock.dir, `${name}.scenario`);
  writeScenario(file, scenario);
  return {
    GPU_LAYERS_MOCK_SCENARIO: file,
    GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
    GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
    GPU_LAYERS_MOCK_TRACE: '',
    CUDA_VISIBLE_DEVICES: undefined,
    CUDA_DEVICE_ORDER: undefined,
    ...extra,
  };
}

describe('CUDA ordinals', () => {
  it('follow CUDA order, matched by UUID, with no CUDA context created', async () => {
    const scenario = host(3, 1, { cudaOrder: [2, 0, 1] });
    const probe = await openProbe(libraries);
    const sample = await probe.sample();
    await probe.close();
    const expected = scenario.devices.map((_, nvmlIndex) => scenario.cudaOrder!.indexOf(nvmlIndex));
    expect(sample.devices.map((d) => d.cudaOrdinal)).toEqual(expected);
    expect(probe.info.cudaDevices.map((d) => d.uuidHex)).toEqual(
      scenario.cudaOrder!.map((i) => scenario.devices[i]!.uuid!.slice(4).replaceAll('-', '')),
    );
    expect(probe.info.cudaDevices[0]!.totalBytes).toBe(scenario.devices[2]!.memory!.total);

    const trace = mock.trace();
    expect(trace).toContain('cuInit 0');
    expect(trace.filter((line) => line.startsWith('cuDeviceGetUuid_v2 '))).toHaveLength(3);
    expect(trace.filter((line) => CONTEXT_CALLS.test(line))).toEqual([]);
    const inits = trace.filter((line) => line === 'nvmlInit_v2 0').length;
    expect(inits).toBeGreaterThan(0);
    expect(trace.filter((line) => line === 'nvmlShutdown 0').length).toBe(inits);
  });

  it('the trace does see a context call when a client makes one (the check above can fail)', () => {
    const traceFile = path.join(mock.dir, 'python-trace.log');
    const run = spawnSync(
      python,
      ['-c', 'import ctypes,sys; c=ctypes.CDLL(sys.argv[1]); c.cuInit(0); p=ctypes.c_void_p(); c.cuDevicePrimaryCtxRetain(ctypes.byref(p), 0)', nodeGypBuild.mockCuda],
      { env: { ...process.env, GPU_LAYERS_MOCK_TRACE: traceFile }, encoding: 'utf8' },
    );
    expect(run.status, run.stderr).toBe(0);
    const lines = readFileSync(traceFile, 'utf8').split('\n');
    expect(lines.filter((line) => CONTEXT_CALLS.test(line))).toEqual(['cuDevicePrimaryCtxRetain 0']);
  });

  it('honour CUDA_VISIBLE_DEVICES: UUIDs and ordinals, hidden devices get a reason', () => {
    const scenario = host(3, 0, { cudaOrder: [2, 0, 1] });
    // "GPU-<device 1>" first, then CUDA's ordinal 0 (NVML device 2); NVML device 0 is hidden.
    const { json } = probeJson(childEnv('visible', scenario, { CUDA_VISIBLE_DEVICES: `${scenario.devices[1]!.uuid},0` }));
    expect(json.devices.map((d: any) => d.cudaOrdinal)).toEqual([null, 0, 1]);
    expect(json.devices[0].errors.cudaOrdinal.code).toBe('NOT_VISIBLE_TO_CUDA');
    expect(json.cuda.deviceCount).toBe(2);
  });

  it('honour CUDA_DEVICE_ORDER=PCI_BUS_ID', () => {
    const scenario = host(3, 0, { cudaOrder: [2, 0, 1] });
    const { json } = probeJson(childEnv('pci-order', scenario, { CUDA_DEVICE_ORDER: 'PCI_BUS_ID' }));
    // h100(i) sits on bus 0x18 + 0x10 * i: PCI order is NVML order here.
    expect(json.devices.map((d: any) => d.cudaOrdinal)).toEqual([0, 1, 2]);
  });

  it('go to MIG devices when their GPU is in MIG mode', () => {
    const mig = { total: 10 * GiB, reserved: 0, used: 0, free: 10 * GiB };
    const scenario: Scenario = {
      devices: [
        h100(0),
        h100(1, [], {
          migMode: { current: 1, pending: 1 },
          migDevices: [
            { slot: 0, gpuInstanceId: 1, computeInstanceId: 0, uuid: 'MIG-bbbbbbbb-0000-4000-8000-000000000001', memory: mig },
            { slot: 1, gpuInstanceId: 2, computeInstanceId: 0, uuid: 'MIG-bbbbbbbb-0000-4000-8000-000000000002', memory: mig },
          ],
        }),
      ],
    };
    const { json } = probeJson(childEnv('mig', scenario));
    expect(json.devices[0].cudaOrdinal).toBe(0);
    expect(json.devices[1].cudaOrdinal).toBeNull();
    expect(json.devices[1].mig.devices.map((d: any) => d.cudaOrdinal)).toEqual([1, 2]);
  });

  it('are null with the reason when the CUDA driver cannot list devices; NVML still answers', () => {
    const { json } = probeJson(childEnv('no-cuda-device', host(2, 1, { cudaInitRc: 100, cudaDriverVersion: 12020 })));
    expect(json.cuda).toEqual({
      available: false,
      driverVersion: 12020,
      deviceCount: null,
      error: { code: 'CUDA_ERROR_NO_DEVICE', nvmlReturn: null, message: 'cuInit returned CUDA_ERROR_NO_DEVICE (100)' },
    });
    expect(json.devices.map((d: any) => [d.cudaOrdinal, d.errors.cudaOrdinal.code])).toEqual([
      [null, 'CUDA_UNAVAILABLE'],
      [null, 'CUDA_UNAVAILABLE'],
    ]);
    expect(json.devices[0].processes).toHaveLength(1);
  });

  it('are null when CUDA is not loaded at all (--no-cuda)', () => {
    const { json } = probeJson(childEnv('skip-cuda', host(1, 0)), ['--no-cuda']);
    expect(json.library.cuda).toBeNull();
    expect(json.cuda.available).toBe(false);
    expect(json.devices[0].cudaOrdinal).toBeNull();
  });
});
