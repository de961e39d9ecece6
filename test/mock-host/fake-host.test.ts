/**
 * FakeHost, the one builder of a fake GPU host (the demo, the incident recorder and the tests'
 * mock host use it, and `gpu-layers/mock` exports it): a monitor pointed at it reads every layer
 * through the real addon and readers, set() moves the host forward, and close() gives the
 * environment back and leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';

import { DEMO_LOG, DEMO_PROCESSES, DEMO_SCENARIO, DEMO_SERVERS, MiB } from '../../src/mock-host/demo-host.js';
import { FakeHost } from '../../src/mock-host/fake-host.js';
import { openMonitor } from '../../src/monitor/monitor.js';

const hosts: FakeHost[] = [];
afterEach(async () => {
  for (const host of hosts.splice(0)) await host.close();
});

function processOf(layered: Awaited<ReturnType<Awaited<ReturnType<typeof openMonitor>>['sample']>>, pid: number) {
  return layered.devices.flatMap((d) => d.processes ?? []).find((p) => p.pid === pid);
}

describe('FakeHost', () => {
  it('a monitor reads every layer of it, and set() moves it forward', async () => {
    const before = process.env.GPU_LAYERS_MOCK_SCENARIO;
    const host = new FakeHost();
    hosts.push(host);
    await host.set({ scenario: DEMO_SCENARIO, processes: DEMO_PROCESSES, servers: DEMO_SERVERS, vllmLog: DEMO_LOG });
    const monitor = await openMonitor(host.monitorOptions());
    try {
      const first = processOf(await monitor.sample(), 48211)!;
      expect(first.command).toBe('VLLM::Worker_TP0');
      expect(first.layers.allocator?.reservedBytes).toBe(69632 * MiB);
      expect(first.layers.contextBytes).toBe(532 * MiB);
      expect(first.layers.framework?.requestsRunning).toBe(18);
      expect(first.host?.containerId).toMatch(/^5b1e9f3c/);

      const grown = DEMO_PROCESSES.map((p) => (p.pid === 48211 ? { ...p, allocator: { ...p.allocator!, reservedMiB: 70000 } } : p));
      await host.set({ scenario: DEMO_SCENARIO, processes: grown, servers: DEMO_SERVERS.map((s) => ({ ...s, running: 2 })) });
      const second = processOf(await monitor.sample(), 48211)!;
      expect(second.layers.allocator?.reservedBytes).toBe(70000 * MiB);
      expect(second.layers.framework?.requestsRunning).toBe(2);
    } finally {
      await monitor.close();
    }
    await host.close();
    expect(existsSync(host.dir)).toBe(false);
    expect(process.env.GPU_LAYERS_MOCK_SCENARIO).toBe(before);
  });
});
