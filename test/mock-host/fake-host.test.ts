/**
 * FakeHost, the one builder of a fake GPU host (the demo, the incident recorder and the tests'
 * mock host use it, and `gpu-layers/mock` exports it): a monitor pointed at it reads every layer
 * through the real addon and readers, set() moves the host forward, and close() gives the
 * environment back and leaves nothing behind.
 */
import { existsSync } from 'node:fs';
import { afterEach, describe, expect, it, vi } from 'vitest';

import { DEMO_LOG, DEMO_PROCESSES, DEMO_SCENARIO, DEMO_SERVERS, MiB } from '../../src/mock-host/demo-host.js';
import { FakeHost, type FakeProcess } from '../../src/mock-host/fake-host.js';
import type { FakeVllmCounters, FakeVllmServer } from '../../src/mock-host/fake-vllm-server.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { openMonitor } from '../../src/monitor/monitor.js';
import { h100 } from '../helpers/scenarios.js';

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

  it('lays out malloc, a container and vLLM counters that a monitor reads, and the load between two samples', async () => {
    // Only Date is faked: the rates are taken over the time between the two samples, whichever clock
    // the layers go by (the host's `nowMs`, set to the same moments).
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      const t0 = Date.UTC(2026, 10, 26, 3, 0, 0);
      const seconds = 60;
      const pod = 'ab'.repeat(32);
      const malloc = { inUseMiB: 2_100, freeMiB: 180, mmappedMiB: 640, mmappedChunks: 96, arenas: 17, releasableMiB: 12 };
      const cgroup = { usageMiB: 19_000, limitMiB: 32_768, inactiveFileMiB: 12_500, oomEvents: 2, oomKills: 1 };
      const worker: FakeProcess = {
        pid: 4150,
        ppid: 4100,
        command: 'VLLM::EngineCore',
        startTicks: 9_000_100,
        gpu: 0,
        driverMiB: 66_048 + 1_180,
        allocator: { reservedMiB: 66_048, allocatedMiB: 65_420, privatePoolMiB: 412, inactiveSplitMiB: 96, retries: 0 },
        host: { anonMiB: 3_400, fileMiB: 1_900, shmemMiB: 380, driverMappedMiB: 72, container: pod, heapMiB: 1_180, anonMappings: 120, malloc, python: { allocatedBlocks: 4_200_000 }, cgroup },
      };
      // A second engine whose companion predates the host figures, outside any container limit.
      const older: FakeProcess = {
        ...worker,
        pid: 5150,
        ppid: 5100,
        startTicks: 9_000_300,
        gpu: 1,
        host: { anonMiB: 2_000, fileMiB: 900, shmemMiB: 0, driverMappedMiB: 40, container: null, cgroup: { usageMiB: 3_000, limitMiB: null } },
      };
      const listener = (pid: number): FakeProcess => ({ pid, ppid: 1, command: 'vllm serve m --port 8000', startTicks: 9_000_000, gpu: null, driverMiB: 0, allocator: null, host: { anonMiB: 900, fileMiB: 520, shmemMiB: 64, driverMappedMiB: 0, container: null } });
      const processes = [listener(4100), worker, older];
      const scenario: Scenario = {
        driverVersion: '550.127.05',
        nvmlVersion: '12.550.127.05',
        cudaDriverVersion: 12040,
        devices: [worker, older].map((p) => h100(p.gpu!, [{ type: 'compute' as const, pid: p.pid, usedBytes: p.driverMiB * MiB }])),
      };
      const before: FakeVllmCounters = { promptTokens: 41_250_000, generationTokens: 9_800_000, requestsFinished: { stop: 36_000, length: 2_100, abort: 40 }, preemptions: 3, prefixCacheQueries: 41_250_000, prefixCacheHits: 18_000_000, startedAt: t0 / 1000 - 86_400 };
      const after: FakeVllmCounters = { ...before, promptTokens: 41_310_000, generationTokens: 9_815_000, requestsFinished: { stop: 36_050, length: 2_104, abort: 40 }, preemptions: 4, prefixCacheQueries: 41_310_000, prefixCacheHits: 18_025_000 };
      const server = (counters: FakeVllmCounters): FakeVllmServer => ({ listenerPid: 4100, model: 'm', running: 6, waiting: 1, kvCacheUsage: 0.5, numGpuBlocks: 25_600, counters });

      const host = new FakeHost();
      hosts.push(host);
      vi.setSystemTime(t0);
      await host.set({ scenario, processes, servers: [server(before)], nowMs: t0 });
      const monitor = await openMonitor(host.monitorOptions());
      try {
        const sampled = await monitor.sample();
        const first = processOf(sampled, worker.pid)!;
        const arena = malloc.inUseMiB - malloc.mmappedMiB + malloc.freeMiB;
        expect(first.host?.malloc).toEqual({
          source: 'mallinfo2',
          arenaBytes: arena * MiB,
          inUseBytes: malloc.inUseMiB * MiB,
          freeBytes: malloc.freeMiB * MiB,
          mmappedBytes: malloc.mmappedMiB * MiB,
          mmappedChunks: malloc.mmappedChunks,
          releasableBytes: malloc.releasableMiB * MiB,
          arenaCount: malloc.arenas,
        });
        expect(first.host?.python).toEqual({ allocatedBlocks: 4_200_000, tracedBytes: null });
        expect(first.host?.outsideMallocBytes).toBe((worker.host.anonMiB - arena - malloc.mmappedMiB) * MiB);
        // The smaps split adds up to the anonymous RSS: heap, the mappings and a 132 kB stack.
        expect(first.host?.anonBytes).toBe(worker.host.anonMiB * MiB);
        expect(first.host?.heapBytes).toBe(worker.host.heapMiB! * MiB);
        expect(first.host?.anonMappingsBytes).toBe((worker.host.anonMiB - worker.host.heapMiB!) * MiB - 132 * 1024);
        expect(first.host?.anonMappingsCount).toBe(worker.host.anonMappings);
        expect(first.host?.driverMappedBytes).toBe(worker.host.driverMappedMiB * MiB);
        expect(first.host?.container).toEqual({
          cgroupVersion: 2,
          path: `/kubepods.slice/kubepods-burstable.slice/cri-containerd-${pod}.scope`,
          usageBytes: cgroup.usageMiB * MiB,
          workingSetBytes: (cgroup.usageMiB - cgroup.inactiveFileMiB) * MiB,
          limitBytes: cgroup.limitMiB * MiB,
          oomEvents: cgroup.oomEvents,
          oomKills: cgroup.oomKills,
          errors: {},
        });
        const finished = (c: FakeVllmCounters) => Object.values(c.requestsFinished).reduce((a, b) => a + b, 0);
        expect(first.layers.framework?.counters).toEqual({
          promptTokens: before.promptTokens,
          generationTokens: before.generationTokens,
          requestsFinished: finished(before),
          preemptions: before.preemptions,
          prefixCacheQueries: before.prefixCacheQueries,
          prefixCacheHits: before.prefixCacheHits,
        });
        // No earlier sample: no rates, and requests in flight say it is not idle.
        expect(first.layers.framework?.load).toMatchObject({ source: 'metrics', promptTokensPerSecond: null, generationTokensPerSecond: null, phase: null });

        // Without malloc figures its companion file has no host part; its cgroup has no limit.
        const old = processOf(sampled, older.pid)!;
        expect(old.host?.malloc).toBeNull();
        expect(old.host?.errors.malloc?.code).toBe('COMPANION_TOO_OLD');
        expect(old.host?.container?.limitBytes).toBeNull();
        expect(old.host?.container?.errors.limitBytes?.code).toBe('NO_LIMIT');
        expect(old.host?.container?.workingSetBytes).toBe(3_000 * MiB);

        vi.setSystemTime(t0 + seconds * 1000);
        await host.set({ scenario, processes, servers: [server(after)], nowMs: t0 + seconds * 1000 });
        const second = processOf(await monitor.sample(), worker.pid)!;
        const prompt = after.promptTokens - before.promptTokens;
        expect(second.layers.framework?.counters?.promptTokens).toBe(after.promptTokens);
        expect(second.layers.framework?.load).toEqual({
          source: 'metrics',
          promptTokensPerSecond: prompt / seconds,
          generationTokensPerSecond: (after.generationTokens - before.generationTokens) / seconds,
          requestsFinishedPerSecond: (finished(after) - finished(before)) / seconds,
          phase: prompt > after.generationTokens - before.generationTokens ? 'prefill-heavy' : 'decode',
          sinceLastPrefillSeconds: 0,
          lastPrefillBurstTokens: prompt,
          idleBeforeLastBurstSeconds: null,
        });
      } finally {
        await monitor.close();
      }
    } finally {
      vi.useRealTimers();
    }
  });
});
