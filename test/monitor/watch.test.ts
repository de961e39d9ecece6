/**
 * monitor.watch() on the real addon and the mock NVML: layered samples at the interval, changes
 * in the mock showing up in later samples, the 250 ms floor, ending on break, abort and close, and
 * a failed sample either ending the watch or going to onError.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openMonitor } from '../../src/monitor/monitor.js';
import type { ProbeOptions } from '../../src/probe/options.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { host, MiB } from '../helpers/scenarios.js';

const libraries = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false as const };
const monitorOf = (probe: ProbeOptions) => openMonitor({ probe, layers: { statsDir: null, host: false } });
let mock: MockHost;

beforeAll(() => {
  mock = createMockHost(host(1, 1));
});
afterAll(() => mock.remove());

describe('monitor.watch', () => {
  it('yields layered samples at the interval, each reading the mock anew', async () => {
    mock.write(host(1, 1));
    const monitor = await monitorOf(libraries);
    try {
      const seen: { at: number; used: number | null }[] = [];
      for await (const sample of monitor.watch({ intervalMs: 250 })) {
        seen.push({ at: Date.parse(sample.takenAt), used: sample.devices[0]!.processes![0]!.layers.driverBytes });
        expect(sample.devices[0]!.processes![0]!.gaps).toBeDefined();
        // The process grows between samples: later samples must see it.
        mock.write(host(1, 1, { devices: [{ ...host(1, 1).devices[0]!, processes: [{ type: 'compute', pid: 10000, usedBytes: (seen.length + 1) * 64 * MiB }] }] }));
        if (seen.length === 3) break;
      }
      expect(seen.map((s) => s.used)).toEqual([64 * MiB, 128 * MiB, 192 * MiB]);
      for (let i = 1; i < seen.length; i++) expect(seen[i]!.at - seen[i - 1]!.at).toBeGreaterThanOrEqual(240);
    } finally {
      await monitor.close();
    }
  });

  it('refuses an interval under 250 ms, zero or negative, at the call', async () => {
    const monitor = await monitorOf(libraries);
    try {
      for (const intervalMs of [249, 0, -5, 1.5, Number.NaN]) {
        expect(() => monitor.watch({ intervalMs })).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS', message: expect.stringContaining('at least 250') }));
      }
    } finally {
      await monitor.close();
    }
  });

  it('ends in the middle of a wait when the signal aborts, and when the probe closes', async () => {
    const monitor = await monitorOf(libraries);
    const controller = new AbortController();
    let count = 0;
    for await (const _ of monitor.watch({ intervalMs: 3_600_000, signal: controller.signal })) {
      count++;
      setTimeout(() => controller.abort(), 20);
    }
    expect(count).toBe(1);

    let closedAfter = 0;
    for await (const _ of monitor.watch({ intervalMs: 250, onError: () => {} })) {
      closedAfter++;
      await monitor.close();
    }
    expect(closedAfter).toBe(1);
  });

  it('a failed sample ends the watch, or goes to onError and the watch goes on', async () => {
    mock.write(host(1, 1, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 600 }] }));
    const failing = await monitorOf({ ...libraries, timeoutMs: 100 });
    try {
      const iterator = failing.watch({ intervalMs: 250 });
      await expect(iterator.next()).rejects.toMatchObject({ code: 'NVML_TIMEOUT' });
    } finally {
      await failing.close();
    }

    const monitor = await monitorOf({ ...libraries, timeoutMs: 100 });
    const errors: string[] = [];
    const recovered = setTimeout(() => mock.write(host(1, 1)), 300);
    try {
      for await (const sample of monitor.watch({ intervalMs: 250, onError: (e) => errors.push((e as { code: string }).code) })) {
        expect(sample.devices).toHaveLength(1);
        break;
      }
      // The first sample timed out; the next ones failed at once while it was stuck, then the driver answered again.
      expect(errors[0]).toBe('NVML_TIMEOUT');
    } finally {
      clearTimeout(recovered);
      await monitor.close();
      mock.write(host(1, 1));
    }
  });
});
