/**
 * The families one collection fills from a layered sample, on hand-built layers: vLLM's KV
 * cache in use, its counters mirrored as counters (a restart makes them fall, which rate() takes
 * as a reset), the request phase, malloc and the container; unknown figures are absent, never 0.
 */
import { describe, expect, it } from 'vitest';

import { createExporterMetrics, fillSampleMetrics } from '../../src/exporter/exporter-metrics.js';
import { joinLayers } from '../../src/layers/join.js';
import type { FrameworkLayer, HostLayer } from '../../src/layers/schema.js';
import type { CompanionResult } from '../../src/sources/companion.js';
import { host10, inputs, sample, vllmLayer } from '../helpers/layered-fixtures.js';

const counters = { promptTokens: 12_000, generationTokens: 30_000, requestsFinished: 41, preemptions: 2, prefixCacheQueries: null, prefixCacheHits: null };
const load = {
  source: 'metrics' as const,
  promptTokensPerSecond: 300,
  generationTokensPerSecond: 900,
  requestsFinishedPerSecond: 0.5,
  phase: 'decode' as const,
  sinceLastPrefillSeconds: 12.5,
  lastPrefillBurstTokens: 4000,
  idleBeforeLastBurstSeconds: null,
};
const container = { cgroupVersion: 2 as const, path: '/kubepods/pod1/ctr', usageBytes: 9000, workingSetBytes: 7000, limitBytes: null, oomEvents: 1, oomKills: 1, errors: {} };
const malloc = { source: 'mallinfo2' as const, arenaBytes: 1800, mmappedBytes: 700, mmappedChunks: 3, inUseBytes: 2300, freeBytes: 200, releasableBytes: 40, arenaCount: 4 };

async function exposition(framework: FrameworkLayer, host: HostLayer): Promise<string> {
  const metrics = createExporterMetrics();
  const base = inputs();
  const file = base.companion!.get(10)!;
  if (!file.ok) throw new Error('fixture');
  (base.companion as Map<number, CompanionResult>).set(10, { ...file, document: { ...file.document, host: { malloc, mallocUnknownBecause: null, python: null } } });
  const layered = joinLayers(sample(), { ...base, host: new Map([[10, host]]), framework: new Map([[10, { layer: framework, errors: {} }]]) });
  fillSampleMetrics(metrics, layered, [], { total: null, available: null });
  return metrics.registry.metrics();
}

/** The value of the series of `family` for pid 10 whose labels include `extra`. */
function valueOf(text: string, family: string, extra = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${family}{`) && l.includes('pid="10"') && l.includes(extra));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

/** The value of the series of `family` for the cgroup at `path`. */
function cgroupValue(text: string, family: string, path: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${family}{`) && l.includes(`cgroup="${path}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('the families of vLLM load, malloc and the container', () => {
  it('exports each figure under its name, counters as counters', async () => {
    const text = await exposition({ ...vllmLayer, counters, load }, { ...host10, container });
    expect(valueOf(text, 'gpu_layers_process_kv_cache_usage_ratio')).toBe(vllmLayer.kvCacheUsage);
    expect(valueOf(text, 'gpu_layers_process_kv_cache_in_use_bytes')).toBe(vllmLayer.kvCacheInUseBytes);
    expect(text).toContain('# TYPE gpu_layers_process_requests_finished_total counter');
    expect(valueOf(text, 'gpu_layers_process_requests_finished_total')).toBe(41);
    expect(valueOf(text, 'gpu_layers_process_tokens_total', 'kind="prompt"')).toBe(12_000);
    expect(valueOf(text, 'gpu_layers_process_tokens_total', 'kind="generation"')).toBe(30_000);
    expect(valueOf(text, 'gpu_layers_process_request_phase', 'phase="decode"')).toBe(1);
    expect(valueOf(text, 'gpu_layers_process_request_phase', 'phase="idle"')).toBe(0);
    expect(valueOf(text, 'gpu_layers_process_request_phase', 'phase="prefill-heavy"')).toBe(0);
    expect(valueOf(text, 'gpu_layers_process_seconds_since_last_prefill')).toBe(12.5);
    expect(valueOf(text, 'gpu_layers_process_malloc_bytes', 'state="in_use"')).toBe(2300);
    expect(valueOf(text, 'gpu_layers_process_malloc_bytes', 'state="free"')).toBe(200);
    // host10's anonymous RSS less malloc's arenas and mmapped chunks.
    expect(valueOf(text, 'gpu_layers_process_host_outside_malloc_bytes')).toBe(host10.anonBytes! - 1800 - 700);
    expect(cgroupValue(text, 'gpu_layers_container_memory_usage_bytes', container.path)).toBe(9000);
    expect(cgroupValue(text, 'gpu_layers_container_memory_working_set_bytes', container.path)).toBe(7000);
    // No limit: no series, not a zero.
    expect(cgroupValue(text, 'gpu_layers_container_memory_limit_bytes', container.path)).toBeUndefined();
    expect(cgroupValue(text, 'gpu_layers_container_oom_kills_total', container.path)).toBe(1);
  });

  it('unknown counters, load and container leave their families without a series for the process', async () => {
    const text = await exposition(vllmLayer, host10);
    for (const family of ['gpu_layers_process_requests_finished_total', 'gpu_layers_process_tokens_total', 'gpu_layers_process_request_phase', 'gpu_layers_process_seconds_since_last_prefill']) {
      expect(valueOf(text, family)).toBeUndefined();
    }
    expect(text.split('\n').filter((l) => l.startsWith('gpu_layers_container_memory_usage_bytes{'))).toEqual([]);
  });

  it('a mirrored counter follows its source down when vLLM restarts', async () => {
    const metrics = createExporterMetrics();
    const fill = async (finished: number) => {
      const layered = joinLayers(sample(), { ...inputs(), framework: new Map([[10, { layer: { ...vllmLayer, counters: { ...counters, requestsFinished: finished } }, errors: {} }]]) });
      fillSampleMetrics(metrics, layered, [], { total: null, available: null });
      return valueOf(await metrics.registry.metrics(), 'gpu_layers_process_requests_finished_total');
    };
    expect(await fill(500)).toBe(500);
    expect(await fill(3)).toBe(3);
  });
});

describe('gpu_layers_oom_events_total', () => {
  it('exists at 0 for each GPU from the first collection, and counts each OOM kill, with or without flights', async () => {
    const { Collector } = await import('../../src/exporter/collector.js');
    const { EVALUATION_SET, evaluationRecording } = await import('../../src/mock-host/evaluation-set.js');
    const samples = evaluationRecording(EVALUATION_SET.find((c) => c.name === 'oom-kill-after-heap-leak-10s')!).samples;
    const killedAt = samples.findIndex((s) => (s.exits ?? []).some((e) => e.oomKillsAfter! > e.oomKillsBefore!));
    let next = killedAt - 3;
    // A monitor that replays the recording around the kill.
    const monitor = { procRoot: '/proc', sample: async () => samples[next++]! } as unknown as ConstructorParameters<typeof Collector>[0];
    const metrics = createExporterMetrics();
    const collector = new Collector(monitor, metrics, { intervalMs: 10_000, flights: null });
    const count = () => {
      const line = collector.exposition.toString('utf8').split('\n').find((l) => l.startsWith('gpu_layers_oom_events_total{') && l.includes('kind="oom-kill"'));
      return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
    };
    await collector.collect();
    expect(count()).toBe(0);
    for (let i = 0; i < 5; i++) await collector.collect();
    expect(count()).toBe(1);
  });
});

describe('metric hygiene: a sum over any label means something', () => {
  const series = (text: string, family: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${family}{`) || l.startsWith(`${family} `))
      .map((l) => ({ line: l, value: Number(l.slice(l.lastIndexOf(' ') + 1)) }));
  const fill = async (options: Parameters<typeof createExporterMetrics>[0] = {}) => {
    const metrics = createExporterMetrics(options);
    fillSampleMetrics(metrics, joinLayers(sample(), inputs()), [], { total: 64e9, available: 32e9 });
    return metrics.registry.metrics();
  };

  it('device memory: used + free + reserved is the total, which is a family of its own', async () => {
    const text = await fill();
    expect(text).not.toContain('state="total"');
    const layered = joinLayers(sample(), inputs());
    for (const device of layered.devices) {
      const parts = series(text, 'gpu_layers_device_memory_bytes').filter((s) => s.line.includes(`gpu="${device.index}"`));
      expect(parts.map((s) => /state="(\w+)"/.exec(s.line)![1]).sort()).toEqual(['free', 'reserved', 'used']);
      const total = series(text, 'gpu_layers_device_memory_total_bytes').find((s) => s.line.includes(`gpu="${device.index}"`))!.value;
      expect(total).toBe(device.memory.totalBytes);
      expect(parts.reduce((a, s) => a + s.value, 0)).toBe(total);
    }
  });

  it('host memory: anon + file + shmem is the RSS, a family of its own; the overlapping figures are families of their own', async () => {
    const text = await fill();
    const kinds = series(text, 'gpu_layers_process_host_memory_bytes').filter((s) => s.line.includes('pid="10"'));
    expect(kinds.map((s) => /kind="(\w+)"/.exec(s.line)![1]).sort()).toEqual(['anon', 'file', 'shmem']);
    expect(kinds.reduce((a, s) => a + s.value, 0)).toBe(host10.rssBytes);
    expect(valueOf(text, 'gpu_layers_process_host_rss_bytes')).toBe(host10.rssBytes);
    expect(valueOf(text, 'gpu_layers_process_host_driver_mapped_bytes')).toBe(host10.driverMappedBytes);
    expect(valueOf(text, 'gpu_layers_process_host_heap_bytes')).toBe(host10.heapBytes);
    expect(valueOf(text, 'gpu_layers_process_host_anon_mappings_bytes')).toBe(host10.anonMappingsBytes);
  });

  it('the command label only when asked for', async () => {
    const off = await fill();
    expect(off).not.toContain('command=');
    expect(series(off, 'gpu_layers_process_driver_memory_bytes').length).toBeGreaterThan(0);
    const on = await fill({ commandLabel: true });
    for (const s of series(on, 'gpu_layers_process_driver_memory_bytes')) expect(s.line).toMatch(/command="[^"]*"/);
    // Without it, the series are the same ones less the label.
    expect(series(on, 'gpu_layers_process_driver_memory_bytes').map((s) => s.line.replace(/,?command="[^"]*"/, ''))).toEqual(series(off, 'gpu_layers_process_driver_memory_bytes').map((s) => s.line));
  });

  it('process layers: each nested figure is a family of its own, and the framework kinds add up within allocated', async () => {
    const metrics = createExporterMetrics();
    const layered = joinLayers(sample(), { ...inputs(), framework: new Map([[10, { layer: vllmLayer, errors: {} }]]) });
    fillSampleMetrics(metrics, layered, [], { total: null, available: null });
    const text = await metrics.registry.metrics();
    // No family carries a label whose values nest (a layer inside another, a gap inside another).
    expect(text).not.toMatch(/\b(layer|gap)="/);
    const process10 = layered.devices[0]!.processes!.find((p) => p.pid === 10)!;
    expect(valueOf(text, 'gpu_layers_process_driver_memory_bytes')).toBe(process10.layers.driverBytes);
    expect(valueOf(text, 'gpu_layers_process_allocator_reserved_bytes')).toBe(process10.layers.allocator!.reservedBytes);
    expect(valueOf(text, 'gpu_layers_process_allocator_allocated_bytes')).toBe(process10.layers.allocator!.allocatedBytes);
    expect(valueOf(text, 'gpu_layers_process_outside_allocator_bytes')).toBe(process10.gaps.outsideAllocatorBytes);
    expect(valueOf(text, 'gpu_layers_process_allocator_cached_bytes')).toBe(process10.gaps.allocatorCachedBytes);
    const kinds = series(text, 'gpu_layers_process_framework_memory_bytes').filter((s) => s.line.includes('pid="10"'));
    expect(kinds.map((s) => /kind="(\w+)"/.exec(s.line)![1]).sort()).toEqual(['kv_cache', 'weights']);
    expect(kinds.reduce((a, s) => a + s.value, 0)).toBe(vllmLayer.weightsBytes! + vllmLayer.kvCacheBytes!);
  });

  it('host memory: total and available are families of their own', async () => {
    const text = await fill();
    expect(series(text, 'gpu_layers_host_memory_total_bytes').map((s) => s.value)).toEqual([64e9]);
    expect(series(text, 'gpu_layers_host_memory_available_bytes').map((s) => s.value)).toEqual([32e9]);
  });

  it('a cgroup that holds several GPU processes has one series per figure, so a sum over cgroups counts it once', async () => {
    const metrics = createExporterMetrics();
    const shared = { ...container, path: '/kubepods/pod1/tp-engine' };
    // pid 10 on GPU 0 and pid 11 on GPU 1: two tensor-parallel workers of one container.
    const host = new Map([
      [10, { ...host10, container: shared }],
      [11, { ...host10, nspid: [11], container: shared }],
    ]);
    fillSampleMetrics(metrics, joinLayers(sample(), { ...inputs(), host }), [], { total: null, available: null });
    const text = await metrics.registry.metrics();
    const usage = series(text, 'gpu_layers_container_memory_usage_bytes');
    expect(usage.map((s) => s.value)).toEqual([9000]);
    expect(usage[0]!.line).toContain(`cgroup="${shared.path}"`);
    expect(usage[0]!.line).not.toMatch(/\b(pid|gpu)="/);
  });

  it('a process in a Kubernetes pod carries its namespace, pod and container, on its own series and on its cgroup\'s', async () => {
    const metrics = createExporterMetrics();
    const layered = joinLayers(sample(), { ...inputs(), host: new Map([[10, { ...host10, container }]]) });
    const process10 = layered.devices[0]!.processes!.find((p) => p.pid === 10)!;
    process10.kubernetes = { namespace: 'serving', pod: 'llama-0', container: 'vllm', deviceIds: ['GPU-0'], matchedBy: 'sole-assignee' };
    fillSampleMetrics(metrics, layered, [], { total: null, available: null });
    const text = await metrics.registry.metrics();
    const identity = 'namespace="serving",pod="llama-0",container="vllm"';
    expect(series(text, 'gpu_layers_process_driver_memory_bytes').find((s) => s.line.includes('pid="10"'))!.line).toContain(identity);
    expect(series(text, 'gpu_layers_container_memory_usage_bytes')[0]!.line).toContain(identity);
    // A process outside any pod has the labels empty (absent in the exposition's meaning).
    expect(series(text, 'gpu_layers_process_driver_memory_bytes').find((s) => s.line.includes('pid="20"'))!.line).toContain('namespace="",pod="",container=""');
  });
});
