/**
 * Context calibration end to end on the mocks: the child retains a context on each device, the
 * mock NVML lists it under the child's pid with the scenario's context size, the figures are
 * cached; a dead or wedged driver fails with a clear error, promptly.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { lookupContextBytes, readCalibrationCache } from '../../src/sources/calibration-cache.js';
import { openProbe } from '../../src/probe/probe.js';
import { runCli } from '../helpers/cli.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { MiB, h100, host } from '../helpers/scenarios.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';

let mock: MockHost;
const scenario: Scenario = { driverVersion: '550.54.15', devices: [h100(0, [], { contextBytes: 510 * MiB }), h100(1, [], { contextBytes: 498 * MiB })] };
const env = () => ({
  GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile,
  GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml,
  GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda,
  GPU_LAYERS_CACHE_DIR: path.join(mock.dir, 'cache'),
  GPU_LAYERS_MOCK_TRACE: path.join(mock.dir, 'child-trace.log'),
  CUDA_MODULE_LOADING: undefined,
});

beforeAll(() => {
  mock = createMockHost(scenario);
});
afterAll(() => mock.remove());

describe('gpu-layers calibrate', () => {
  it('measures each device in a child process and caches it', async () => {
    const run = runCli(['calibrate', '--json'], env());
    expect(run.status, run.stderr).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.devices.map((d: any) => [d.ordinal, d.uuid, d.contextBytes, d.error])).toEqual(
      scenario.devices.map((d, i) => [i, d.uuid, d.contextBytes, null]),
    );
    expect(report).toMatchObject({ driverVersion: '550.54.15', moduleLoading: 'LAZY' });
    const cache = await readCalibrationCache(report.cacheFile);
    expect(cache.ok).toBe(true);
    const entries = cache.ok ? cache.entries : [];
    expect(lookupContextBytes(entries, scenario.devices[1]!.uuid!, '550.54.15', 'LAZY')).toBe(498 * MiB);
    expect(lookupContextBytes(entries, scenario.devices[1]!.uuid!, '550.54.15', 'EAGER')).toBeNull();
    expect(lookupContextBytes(entries, scenario.devices[1]!.uuid!, '535.104.05', 'LAZY')).toBeNull();
    // The context was created in the child (its trace), which has exited: NVML lists it no more.
    expect(readFileSync(env().GPU_LAYERS_MOCK_TRACE, 'utf8')).toMatch(/^cuDevicePrimaryCtxRetain 0$/m);
    const probe = await openProbe({ nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false });
    const sample = await probe.sample();
    await probe.close();
    expect(sample.devices.map((d) => d.processes)).toEqual([[], []]);
  });

  it('a CUDA driver without devices fails with exit 3 and says why', () => {
    mock.write({ ...scenario, cudaInitRc: 100 });
    const run = runCli(['calibrate'], env());
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/cuInit failed with CUDA error 100/);
    mock.write(scenario);
  });

  it('a driver that does not answer: the child is killed at the deadline', () => {
    mock.write({ ...scenario, delay: [{ symbol: 'cuDevicePrimaryCtxRetain', ms: 20_000 }] });
    const started = Date.now();
    const run = runCli(['calibrate', '--timeout', '800'], env());
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/NVML_TIMEOUT/);
    expect(Date.now() - started).toBeLessThan(6000);
    mock.write(scenario);
  });

  it('nothing measured, nothing cached', () => {
    const cacheDir = path.join(mock.dir, 'empty-cache');
    mock.write({ ...scenario, rc: [{ symbol: 'cuDevicePrimaryCtxRetain', rc: 2 }] });
    const run = runCli(['calibrate', '--json'], { ...env(), GPU_LAYERS_CACHE_DIR: cacheDir });
    expect(run.status).toBe(0);
    const report = JSON.parse(run.stdout);
    expect(report.cacheFile).toBeNull();
    expect(report.devices[0].error).toMatch(/creating the context failed \(CUDA error 2\)/);
    expect(existsSync(cacheDir)).toBe(false);
    mock.write(scenario);
  });
});
