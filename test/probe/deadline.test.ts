/**
 * A call that does not return (a wedged GPU, simulated by the mock's delay): the sample rejects
 * with NVML_TIMEOUT at the deadline, the event loop keeps running throughout, no second native
 * call starts while the first is stuck, and the probe recovers when the call returns.
 */
import { spawnSync } from 'node:child_process';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openProbe } from '../../src/probe/probe.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, nodeGypBuild, requireFile } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false as const };
let mock: MockHost;

beforeAll(() => {
  mock = createMockHost(host(1, 1), { trace: true });
});
afterAll(() => mock.remove());

function countCalls(symbol: string): number {
  return mock.trace().filter((line) => line.startsWith(`${symbol} `)).length;
}

describe('deadline', () => {
  it('rejects a stuck sample at the deadline while timers keep firing, then recovers', async () => {
    mock.write(host(1, 1));
    const probe = await openProbe({ ...libraries, timeoutMs: 300 });
    try {
      const before = countCalls('nvmlDeviceGetCount_v2');
      mock.write(host(1, 1, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 1500 }] }));
      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      const loop = monitorEventLoopDelay({ resolution: 5 });
      loop.enable();
      const started = performance.now();
      const error = await probe.sample().then(() => null, (e: unknown) => e);
      const elapsed = performance.now() - started;
      expect(error).toMatchObject({ code: 'NVML_TIMEOUT', message: expect.stringContaining('300 ms') });
      expect(elapsed).toBeGreaterThanOrEqual(290);
      expect(elapsed).toBeLessThan(1000);
      expect(ticks).toBeGreaterThanOrEqual(15);

      // While the first call is stuck, a new sample fails at once and starts nothing native.
      const again = performance.now();
      await expect(probe.sample()).rejects.toMatchObject({ code: 'NVML_TIMEOUT', message: expect.stringContaining('earlier sample') });
      expect(performance.now() - again).toBeLessThan(50);

      // The stuck call returns after 1.5 s; then sampling works again.
      mock.write(host(1, 1));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      clearInterval(timer);
      loop.disable();
      expect(loop.max / 1e6).toBeLessThan(100);
      const sample = await probe.sample();
      expect(sample.devices).toHaveLength(1);
      // One call was stuck, one ran after recovery: no native call was started in between.
      expect(countCalls('nvmlDeviceGetCount_v2') - before).toBe(2);
    } finally {
      await probe.close();
    }
  });

  it('rejects a stuck open with NVML_TIMEOUT', async () => {
    mock.write(host(1, 0, { delay: [{ symbol: 'nvmlInit_v2', ms: 5000 }] }));
    const started = performance.now();
    await expect(openProbe({ ...libraries, timeoutMs: 200 })).rejects.toMatchObject({ code: 'NVML_TIMEOUT' });
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('close() returns at the deadline even when a call holds the worker', async () => {
    mock.write(host(1, 0));
    const probe = await openProbe({ ...libraries, timeoutMs: 200 });
    mock.write(host(1, 0, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 3000 }] }));
    await expect(probe.sample()).rejects.toMatchObject({ code: 'NVML_TIMEOUT' });
    const started = performance.now();
    await probe.close();
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('close() behind a stuck sample resolves at once, not at the deadline', async () => {
    mock.write(host(1, 0));
    const probe = await openProbe({ ...libraries, timeoutMs: 1000 });
    mock.write(host(1, 0, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 3000 }] }));
    await expect(probe.sample()).rejects.toMatchObject({ code: 'NVML_TIMEOUT' });
    const started = performance.now();
    await probe.close();
    // The shutdown queues behind the stuck call: waiting for it would be waiting on the driver.
    expect(performance.now() - started).toBeLessThan(250);
  });

  // The native side of a stuck open (the probe given up, its close queued behind the call, the
  // process leaving while the worker still sleeps in the driver), also under ASan: see
  // test/cli/hung-driver.test.ts for every entry point.
  it('a CLI run whose open never returns exits 3 at the deadline, not when the call returns', () => {
    requireFile(cliPath, 'build the package (npm ci)');
    mock.write(host(1, 0, { delay: [{ symbol: 'nvmlInit_v2', ms: 3_600_000 }] }));
    const started = performance.now();
    const run = spawnSync(process.execPath, [cliPath, 'probe', '--timeout', '300', '--nvml-lib', nodeGypBuild.mockNvml, '--no-cuda'], {
      env: { ...process.env, GPU_LAYERS_MOCK_TRACE: '' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(run.signal, 'killed by the 10 s timeout: the process outlived its deadline').toBeNull();
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/open did not return within 300 ms \[NVML_TIMEOUT\]/);
    expect(performance.now() - started).toBeLessThan(5000);
  });

  it('a CLI run against a wedged GPU exits 3 promptly instead of hanging', () => {
    requireFile(cliPath, 'build the package (npm ci)');
    mock.write(host(1, 0, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 3_600_000 }] }));
    const started = performance.now();
    const run = spawnSync(process.execPath, [cliPath, 'probe', '--timeout', '300', '--nvml-lib', nodeGypBuild.mockNvml, '--no-cuda'], {
      env: { ...process.env, GPU_LAYERS_MOCK_TRACE: '' },
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/NVML_TIMEOUT/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
