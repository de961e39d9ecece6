/** doctor's verdicts over gathered facts: each missing piece is named with its fix. */
import { describe, expect, it } from 'vitest';

import { doctorChecks, type DoctorFacts } from '../../src/doctor/doctor-checks.js';
import { GpuLayersError } from '../../src/errors.js';
import { joinLayers, type LayerInputs } from '../../src/layers/join.js';
import { interpretOpen } from '../../src/probe/open-result.js';
import { buildSample } from '../../src/sample/build-sample.js';
import { context, rawDevice, rawOpen, rawSample } from '../helpers/raw-readings.js';

const NOT_REQUESTED = { code: 'NOT_REQUESTED', nvmlReturn: null, message: 'no' };

function inputs(overrides: Partial<LayerInputs> = {}): LayerInputs {
  return {
    host: null,
    companion: null,
    framework: new Map(),
    calibration: { entries: [], moduleLoading: 'LAZY', error: { code: 'NOT_CALIBRATED', nvmlReturn: null, message: 'no cache: run `gpu-layers calibrate`' } },
    sources: {
      companion: { location: null, ok: false, error: NOT_REQUESTED },
      vllmMetrics: [{ location: 'http://h:8000/metrics', ok: false, error: { code: 'VLLM_TIMEOUT', nvmlReturn: null, message: 'no answer within 2000 ms' } }],
      vllmLog: null,
      hfConfig: null,
      calibration: { location: '/c.json', ok: false, error: { code: 'NOT_CALIBRATED', nvmlReturn: null, message: 'no cache: run `gpu-layers calibrate`' } },
    },
    ...overrides,
  };
}

function facts(overrides: Partial<DoctorFacts> = {}): DoctorFacts {
  const sample = joinLayers(buildSample(rawSample([rawDevice(0)]), context()), inputs());
  return {
    addon: { ok: true, path: '/x/gpu_layers.node' },
    probe: { ok: true, info: interpretOpen(rawOpen(), {}).info, sample },
    deviceFiles: [{ path: '/dev/nvidiactl', access: 'ok' }],
    visiblePids: new Set([10]),
    cudaVisibleDevices: undefined,
    ...overrides,
  };
}

const byId = (checks: ReturnType<typeof doctorChecks>, id: string) => checks.filter((c) => c.id === id);

describe('doctorChecks', () => {
  it('names each missing layer source with its fix', () => {
    const checks = doctorChecks(facts());
    expect(byId(checks, 'nvml')[0]).toMatchObject({ ok: true, detail: expect.stringContaining('driver 550.54.15') });
    expect(byId(checks, 'pid-namespace')[0]).toMatchObject({ ok: true });
    expect(byId(checks, 'calibration')[0]).toMatchObject({ ok: false, fix: expect.stringContaining('gpu-layers calibrate') });
    expect(byId(checks, 'companion')[0]).toMatchObject({ ok: false, fix: expect.stringContaining('gpu-layers companion') });
    expect(byId(checks, 'vllm')[0]).toMatchObject({ ok: false, detail: 'no answer within 2000 ms', fix: expect.stringContaining('--vllm-timeout') });
  });

  it('a GPU process not in this /proc: the PID namespace, and how to share the host one', () => {
    expect(byId(doctorChecks(facts({ visiblePids: new Set() })), 'pid-namespace')[0]).toMatchObject({
      ok: false,
      detail: expect.stringContaining('1 of 1 GPU process(es) not in this /proc (pids 10)'),
      fix: expect.stringContaining('--pid=host'),
    });
  });

  it('NVML that cannot be used: its error and hints, and nothing that depends on it', () => {
    const error = new GpuLayersError('NVML_DRIVER_NOT_LOADED', 'NVML could not be initialised', { hints: ['load the kernel module'] });
    const checks = doctorChecks(facts({ probe: { ok: false, error } }));
    expect(byId(checks, 'nvml')[0]).toMatchObject({ ok: false, detail: 'NVML could not be initialised [NVML_DRIVER_NOT_LOADED]', fix: 'load the kernel module' });
    expect(byId(checks, 'companion')).toEqual([]);
  });

  it('device files this user may not open', () => {
    expect(byId(doctorChecks(facts({ deviceFiles: [{ path: '/dev/nvidiactl', access: 'ok' }, { path: '/dev/nvidia0', access: 'denied' }] })), 'permissions')[0]).toMatchObject({
      ok: false,
      detail: 'not accessible to this user: /dev/nvidia0',
    });
  });

  it('an addon that does not load stops everything after it', () => {
    const checks = doctorChecks(facts({ addon: { ok: false, error: new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', 'cannot load', { hints: ['npm rebuild gpu-layers'] }) }, probe: null }));
    expect(checks.map((c) => c.id)).toEqual(['addon', 'permissions']);
    expect(checks[0]).toMatchObject({ ok: false, fix: 'npm rebuild gpu-layers' });
  });
});
