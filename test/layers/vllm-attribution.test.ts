/** attributeFramework: which processes belong to a vLLM server, and each one's framework layer. */
import { describe, expect, it } from 'vitest';

import { attributeFramework, type GpuProcessInfo } from '../../src/layers/vllm-attribution.js';
import { kvGeometry } from '../../src/sources/hf-config.js';
import { parseVllmLog } from '../../src/sources/vllm-log.js';
import type { VllmMetricsResult } from '../../src/sources/vllm-metrics.js';

const GiB = 2 ** 30;
const counters = { promptTokens: 1200, generationTokens: 3400, requestsFinished: 20, preemptions: 0, prefixCacheQueries: null, prefixCacheHits: null };
const engine = { engine: '0', modelName: 'm', kvCacheUsage: 0.25, requestsRunning: 4, requestsWaiting: 1, numGpuBlocks: 1000, blockSize: 16, cacheDtype: 'auto', cacheConfig: {}, counters };
const metrics: VllmMetricsResult = { ok: true, url: 'http://127.0.0.1:8000/metrics', engines: [engine] };

// API server 100 -> engine core 200 -> workers 301, 302 (GPU processes); 900 is someone else's.
const tree = (pid: number, chain: number[], commands: (string | null)[]): GpuProcessInfo => ({ pid, ancestry: [pid, ...chain], commands });
const workers = [
  tree(301, [200, 100], ['python3 -c from multiprocessing.spawn import spawn_main', 'VLLM::EngineCore', 'vllm serve m --port 8000']),
  tree(302, [200, 100], ['python3 -c from multiprocessing.spawn import spawn_main', 'VLLM::EngineCore', 'vllm serve m --port 8000']),
  tree(900, [1], ['python3 train.py', null]),
];
const llama = { num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 128, torch_dtype: 'bfloat16' };
const geometry = (tp: number, blockSize: number, cacheDtype: string) => kvGeometry(llama, { tensorParallel: tp, blockSize, cacheDtype });

describe('attributeFramework', () => {
  it('the listener and its descendants are the server; the KV arena from blocks x bytes per block', () => {
    const results = attributeFramework(workers, { endpoints: [{ metrics, listeners: [100] }], log: null, geometry });
    const worker = results.get(301)!;
    expect(worker.layer).toMatchObject({
      engine: 'vllm',
      matchedBy: 'listening-socket',
      kvCacheUsage: 0.25,
      requestsRunning: 4,
      numGpuBlocks: 1000,
      blockSize: 16,
      // TP 2 (two workers): 4 KV heads a GPU -> 2 x 16 x 4 x 128 x 2 B x 32 layers a block.
      kvCacheBytes: 1000 * 2 * 16 * 4 * 128 * 2 * 32,
      kvCacheSource: 'blocks-x-config',
      weightsBytes: null,
      sources: { metrics: metrics.url, log: null },
    });
    expect(worker.layer !== null && worker.errors['layers.framework.weightsBytes']?.code).toBe('INPUT_MISSING');
    expect(results.get(900)).toMatchObject({ layer: null, reason: { code: 'NOT_IN_VLLM_INSTANCE' } });
  });

  it("the blocks' alignment with the allocator: a small pool whose per-layer tensors round up to 2 MiB is worth a flag", () => {
    // 1000 blocks x 32 KiB a layer (16 tokens x 2 x 4 KV heads x 128 x 2 B) = 31.25 MiB a layer,
    // rounded to 32 MiB: 0.75 MiB lost in each of the 32 layers, 2.4% of the pool.
    const layer = attributeFramework(workers, { endpoints: [{ metrics, listeners: [100] }], log: null, geometry }).get(301)!.layer!;
    expect(layer.kvBlockAlignment).toMatchObject({ blockBytesPerLayer: 16 * 2 * 4 * 128 * 2, poolLostBytes: 32 * 0.75 * 2 ** 20, worthFixing: true });
    expect(layer.kvBlockAlignment!.poolLostShare).toBeCloseTo(0.75 / 31.25, 6);
    expect(layer.kvBlockAlignment!.advice).toMatch(/num-gpu-blocks-override/);
    // Without a model config there is nothing to align against.
    expect(attributeFramework(workers, { endpoints: [{ metrics, listeners: [100] }], log: null, geometry: null }).get(301)!.layer!.kvBlockAlignment).toBeNull();
  });

  it('without a visible listener and one server, command lines mentioning vLLM decide, ancestors included', () => {
    const results = attributeFramework(workers, { endpoints: [{ metrics, listeners: null }], log: null, geometry: null });
    expect([...results].filter(([, r]) => r.layer !== null).map(([pid]) => pid)).toEqual([301, 302]);
    expect(results.get(301)!.layer).toMatchObject({ kvCacheBytes: null, matchedBy: 'command-line' });
  });

  it('pid-tagged log figures go to their process, and win over blocks x config', () => {
    const log = parseVllmLog(
      '(VllmWorker TP0 pid=301) INFO Model loading took 33.88 GiB and 21.4 seconds\n(VllmWorker TP0 pid=301) INFO Available KV cache memory: 30.15 GiB\n(VllmWorker TP1 pid=302) INFO Graph capturing finished in 31 secs, took 1.05 GiB\n',
    );
    const results = attributeFramework(workers, { endpoints: [{ metrics, listeners: [100] }], log: { path: 'v.log', parsed: log }, geometry });
    expect(results.get(301)!.layer).toMatchObject({ weightsBytes: Math.round(33.88 * GiB), kvCacheBytes: Math.round(30.15 * GiB), kvCacheSource: 'log', cudaGraphBytes: null });
    expect(results.get(302)!.layer).toMatchObject({ weightsBytes: null, cudaGraphBytes: Math.round(1.05 * GiB), kvCacheSource: 'blocks-x-config' });
  });

  it('untagged log figures only where there is no doubt whose they are', () => {
    const log = parseVllmLog('INFO Model loading took 14.99 GiB and 6.2 seconds\n');
    const one = attributeFramework([workers[0]!], { endpoints: [], log: { path: 'v.log', parsed: log }, geometry: null });
    expect(one.get(301)!.layer).toMatchObject({ weightsBytes: Math.round(14.99 * GiB), matchedBy: 'command-line', sources: { metrics: null, log: 'v.log' } });
    const two = attributeFramework(workers, { endpoints: [], log: { path: 'v.log', parsed: log }, geometry: null });
    expect(two.get(301)!.layer).toMatchObject({ weightsBytes: null });
  });

  it('a failed /metrics passes its reason on to the figures it would have given', () => {
    const down: VllmMetricsResult = { ok: false, url: 'http://127.0.0.1:8000/metrics', error: { code: 'VLLM_TIMEOUT', nvmlReturn: null, message: 'no answer' } };
    const result = attributeFramework(workers, { endpoints: [{ metrics: down, listeners: [100] }], log: null, geometry: null }).get(301)!;
    expect(result.layer).toMatchObject({ kvCacheUsage: null });
    expect(result.layer !== null && result.errors['layers.framework.kvCacheUsage']?.code).toBe('VLLM_TIMEOUT');
  });

  it('several data-parallel engines: occupancy cannot be pinned on a process', () => {
    const dp: VllmMetricsResult = { ok: true, url: 'u', engines: [engine, { ...engine, engine: '1' }] };
    const result = attributeFramework(workers, { endpoints: [{ metrics: dp, listeners: [100] }], log: null, geometry: null }).get(302)!;
    expect(result.layer !== null && result.errors['layers.framework.kvCacheUsage']?.code).toBe('AMBIGUOUS_ENGINE');
  });

  it('a log alone: its pid tags tie a process to it even when no command line mentions vLLM', () => {
    const log = parseVllmLog('(Worker pid=900) INFO Model loading took 2.5 GiB and 3.0 seconds\n');
    const results = attributeFramework(workers, { endpoints: [], log: { path: 'v.log', parsed: log }, geometry: null });
    expect(results.get(900)!.layer).toMatchObject({ matchedBy: 'log-pid', weightsBytes: Math.round(2.5 * GiB) });
    expect(results.get(301)!.layer).toMatchObject({ matchedBy: 'command-line', weightsBytes: null });
  });

  it('no vLLM source: NOT_REQUESTED', () => {
    expect(attributeFramework(workers, { endpoints: [], log: null, geometry: null }).get(301)).toMatchObject({ layer: null, reason: { code: 'NOT_REQUESTED' } });
  });
});
