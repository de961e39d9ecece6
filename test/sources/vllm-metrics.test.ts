/**
 * vLLM /metrics: both metric generations from fixtures, and a real local HTTP server for the
 * failures (HTML, empty, malformed, HTTP errors, refused, a server that never answers).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fetchVllmMetrics, metricsUrl, readVllmMetricsText, type VllmCounters } from '../../src/sources/vllm-metrics.js';
import { fuzzParams } from '../helpers/fuzz.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/vllm');
const fixture = (name: string) => readFileSync(path.join(dir, name), 'utf8');
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((request, response) => {
    const route = request.url ?? '/';
    if (route === '/hang/metrics') return; // never answers
    if (route === '/missing/metrics') {
      response.writeHead(404).end('not found');
      return;
    }
    const name = route.split('/')[1]!;
    response.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(name === 'empty' ? '' : fixture(`${name}.txt`));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => {
  server.closeAllConnections();
  server.close();
});

describe('readVllmMetricsText', () => {
  it('V1: occupancy, requests and the cache config of the engine', () => {
    const result = readVllmMetricsText('u', fixture('metrics-v1.txt'));
    expect(result).toMatchObject({
      ok: true,
      engines: [
        {
          engine: '0',
          modelName: 'meta-llama/Llama-3.1-70B-Instruct',
          kvCacheUsage: 0.4217,
          requestsRunning: 12,
          requestsWaiting: 3,
          numGpuBlocks: 24682,
          blockSize: 16,
          cacheDtype: 'auto',
        },
      ],
    });
    expect(result.ok && result.engines[0]!.cacheConfig?.gpu_memory_utilization).toBe('0.9');
  });

  it('0.10: both occupancy names present, the current one wins; two data-parallel engines', () => {
    const result = readVllmMetricsText('u', fixture('metrics-v0.10-both.txt'));
    expect(result.ok && result.engines.map((e) => [e.engine, e.kvCacheUsage, e.requestsRunning, e.numGpuBlocks, e.cacheDtype])).toEqual([
      ['0', 0.12, 1, 10240, 'fp8'],
      ['1', 0.2, 2, 10241, 'fp8'],
    ]);
  });

  it('V0: no engine label, the old occupancy name, one engine', () => {
    const result = readVllmMetricsText('u', fixture('metrics-v0.txt'));
    expect(result).toMatchObject({ ok: true, engines: [{ engine: null, modelName: 'facebook/opt-125m', kvCacheUsage: 0.0021, numGpuBlocks: 27806 }] });
    expect(result.ok && result.engines).toHaveLength(1);
  });

  it.each([
    ['metrics-html.txt', /an HTML page/],
    ['metrics-malformed.txt', /invalid line: vllm:num_requests_running\{engine="0",model_name="m" 12\.0/],
  ])('%s is refused with VLLM_METRICS_INVALID and says why', (name, message) => {
    expect(readVllmMetricsText('u', fixture(name))).toMatchObject({ ok: false, error: { code: 'VLLM_METRICS_INVALID', message: expect.stringMatching(message) } });
  });

  it('Prometheus text without vLLM metrics is VLLM_METRICS_NOT_FOUND', () => {
    expect(readVllmMetricsText('u', '# TYPE up gauge\nup 1\n')).toMatchObject({ ok: false, error: { code: 'VLLM_METRICS_NOT_FOUND' } });
  });
});

/**
 * The values of one family's sample lines in a page, read independently of the parser: each
 * `name{labels} value` line, with its labels as text.
 */
function sampleLines(text: string, name: string): { labels: string; value: number }[] {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return [...text.matchAll(new RegExp(`^${escaped}(?:\\{([^}]*)\\})? (\\S+)$`, 'gm'))].map((m) => ({ labels: m[1] ?? '', value: Number(m[2]) }));
}
const onlyValue = (text: string, name: string): number => {
  const lines = sampleLines(text, name);
  expect(lines, name).toHaveLength(1);
  return lines[0]!.value;
};
const NO_COUNTERS: VllmCounters = { promptTokens: null, generationTokens: null, requestsFinished: null, preemptions: null, prefixCacheQueries: null, prefixCacheHits: null };

describe('readVllmMetricsText: counters', () => {
  it('0.10 (V1, captured): the current prefix-cache name, the deprecated one where only it is there, _created ignored', () => {
    const text = fixture('metrics-v0.10.0-capture.txt');
    const result = readVllmMetricsText('u', text);
    expect(result.ok && result.engines.map((e) => e.engine)).toEqual(['0']);
    // The capture holds queries under the current name and hits under the deprecated one only.
    expect(result.ok && result.engines[0]!.counters).toEqual({
      ...NO_COUNTERS,
      prefixCacheQueries: onlyValue(text, 'vllm:prefix_cache_queries_total'),
      prefixCacheHits: onlyValue(text, 'vllm:gpu_prefix_cache_hits_total'),
    });
    expect(onlyValue(text, 'vllm:prefix_cache_queries_total')).toBe(32);
    // Each counter's _created (a Unix time) is on the page and read as nothing.
    expect(onlyValue(text, 'vllm:gpu_prefix_cache_hits_created')).toBeGreaterThan(1.7e9);
  });

  it('0.5.3 (V0, captured): request_success_total summed over finished_reason, no engine label', () => {
    const text = fixture('metrics-v0.5.3-capture.txt');
    const reasons = sampleLines(text, 'vllm:request_success_total');
    expect(reasons.map((r) => r.labels)).toEqual([expect.stringContaining('finished_reason="stop"'), expect.stringContaining('finished_reason="length"')]);
    const result = readVllmMetricsText('u', text);
    expect(result.ok && result.engines).toHaveLength(1);
    expect(result.ok && result.engines[0]).toMatchObject({ engine: null, modelName: 'meta-llama/Meta-Llama-3-70B-Instruct' });
    expect(result.ok && result.engines[0]!.counters).toEqual({ ...NO_COUNTERS, requestsFinished: reasons.reduce((sum, r) => sum + r.value, 0) });
    expect(result.ok && result.engines[0]!.counters.requestsFinished).toBe(3918);
  });

  it('~0.4 (V0, captured): prompt and generation tokens; the preemption counter that build lacks is null', () => {
    const text = fixture('metrics-v0.4-capture.txt');
    const result = readVllmMetricsText('u', text);
    expect(result.ok && result.engines[0]!.counters).toEqual({
      ...NO_COUNTERS,
      promptTokens: onlyValue(text, 'vllm:prompt_tokens_total'),
      generationTokens: onlyValue(text, 'vllm:generation_tokens_total'),
    });
    expect(result.ok && result.engines[0]!.counters).toMatchObject({ promptTokens: 1196, generationTokens: 218152, preemptions: null });
  });

  it('the written V1 page: queries and preemptions read, its _created gauge not', () => {
    const text = fixture('metrics-v1.txt');
    const result = readVllmMetricsText('u', text);
    expect(result.ok && result.engines[0]!.counters).toEqual({
      ...NO_COUNTERS,
      prefixCacheQueries: onlyValue(text, 'vllm:prefix_cache_queries_total'),
      preemptions: onlyValue(text, 'vllm:num_preemptions_total'),
    });
  });

  it('pages without counters give all of them null', () => {
    for (const name of ['metrics-v0.txt', 'metrics-v0.10-both.txt']) {
      const result = readVllmMetricsText('u', fixture(name));
      expect(result.ok && result.engines.map((e) => e.counters), name).toEqual(result.ok ? result.engines.map(() => NO_COUNTERS) : []);
    }
  });

  it('per engine label, every counter of each era; the current prefix-cache name wins over the old', () => {
    const lines = (engine: string, base: number) =>
      [
        `vllm:prompt_tokens_total{engine="${engine}",model_name="m"} ${base + 1}`,
        `vllm:prompt_tokens_created{engine="${engine}",model_name="m"} 1.7e9`,
        `vllm:generation_tokens_total{engine="${engine}",model_name="m"} ${base + 2}`,
        `vllm:num_preemptions_total{engine="${engine}",model_name="m"} ${base + 3}`,
        `vllm:gpu_prefix_cache_queries_total{engine="${engine}",model_name="m"} 999999`,
        `vllm:gpu_prefix_cache_hits_total{engine="${engine}",model_name="m"} 999999`,
        `vllm:prefix_cache_queries_total{engine="${engine}",model_name="m"} ${base + 4}`,
        `vllm:prefix_cache_hits_total{engine="${engine}",model_name="m"} ${base + 5}`,
      ].join('\n');
    const success = ['0', '1'].flatMap((engine, i) =>
      ['stop', 'length', 'abort'].map((reason, j) => `vllm:request_success_total{engine="${engine}",finished_reason="${reason}",model_name="m"} ${(i + 1) * 10 + j}`),
    );
    // Families spread over the page in vLLM's order: one family's samples of both engines together.
    const text = [lines('0', 100), lines('1', 200), ...success].join('\n').split('\n').sort().join('\n');
    const result = readVllmMetricsText('u', `${text}\n`);
    expect(result.ok && result.engines.map((e) => [e.engine, e.counters])).toEqual([
      ['0', { promptTokens: 101, generationTokens: 102, requestsFinished: 10 + 11 + 12, preemptions: 103, prefixCacheQueries: 104, prefixCacheHits: 105 }],
      ['1', { promptTokens: 201, generationTokens: 202, requestsFinished: 20 + 21 + 22, preemptions: 203, prefixCacheQueries: 204, prefixCacheHits: 205 }],
    ]);
  });

  it('a family declared without _total (OpenMetrics style) is still found by its _total samples', () => {
    const text = [
      '# HELP vllm:prompt_tokens Number of prefill tokens processed.',
      '# TYPE vllm:prompt_tokens counter',
      'vllm:prompt_tokens_total{engine="0",model_name="m"} 42.0',
      'vllm:prompt_tokens_created{engine="0",model_name="m"} 1.7e9',
      '',
    ].join('\n');
    const result = readVllmMetricsText('u', text);
    expect(result.ok && result.engines[0]!.counters.promptTokens).toBe(42);
  });

  it.each([
    ['NaN', null],
    ['+Inf', null],
    ['-1', null],
    ['-0', 0],
    ['1e309', null],
    ['None', null],
    ['12.5', 12.5],
  ] as const)('a counter value of %s reads as %s', (value, expected) => {
    const result = readVllmMetricsText('u', `vllm:generation_tokens_total{engine="0"} ${value}\nvllm:request_success_total{engine="0",finished_reason="stop"} 3\nvllm:request_success_total{engine="0",finished_reason="length"} ${value}\n`);
    expect(result.ok && result.engines[0]!.counters.generationTokens).toBe(expected);
    expect(Object.is(result.ok && result.engines[0]!.counters.generationTokens, -0)).toBe(false);
    // One reason that is no count leaves the sum unknown.
    expect(result.ok && result.engines[0]!.counters.requestsFinished).toBe(expected === null ? null : 3 + expected);
  });

  it('any page: every counter null or a finite number of at least 0', () => {
    const name = fc.constantFrom('vllm:prompt_tokens_total', 'vllm:generation_tokens_total', 'vllm:request_success_total', 'vllm:num_preemptions_total', 'vllm:prefix_cache_hits_total', 'vllm:gpu_prefix_cache_queries_total', 'vllm:prompt_tokens_created');
    const value = fc.oneof(fc.constantFrom('NaN', '+Inf', '-Inf', '-0', '1e309', '9'.repeat(400), 'x'), fc.double().map(String));
    const line = fc.tuple(name, fc.constantFrom('', '0', '1'), fc.constantFrom('stop', 'length'), value).map(([n, e, r, v]) => `${n}{${e === '' ? '' : `engine="${e}",`}finished_reason="${r}"} ${v}`);
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 20 }), (lines) => {
        const result = readVllmMetricsText('u', `${lines.join('\n')}\n`);
        if (!result.ok) return;
        for (const engine of result.engines) {
          for (const v of Object.values(engine.counters)) expect(v === null || (Number.isFinite(v) && v >= 0 && !Object.is(v, -0)), String(v)).toBe(true);
        }
      }),
      fuzzParams(300),
    );
  });
});

describe('fetchVllmMetrics', () => {
  it('reads a server given by its base URL', async () => {
    const result = await fetchVllmMetrics(`${base}/metrics-v1`, 2000);
    expect(result).toMatchObject({ ok: true, url: `${base}/metrics-v1`, engines: [{ numGpuBlocks: 24682 }] });
  });

  it('adds /metrics to a bare server URL', () => {
    expect(metricsUrl('http://127.0.0.1:8000')).toBe('http://127.0.0.1:8000/metrics');
    expect(metricsUrl('http://h:1/custom/metrics')).toBe('http://h:1/custom/metrics');
  });

  it.each([
    ['/hang/metrics', 'VLLM_TIMEOUT'],
    ['/missing/metrics', 'VLLM_HTTP_ERROR'],
    ['/empty', 'VLLM_METRICS_EMPTY'],
    ['/metrics-html', 'VLLM_METRICS_INVALID'],
  ])('%s gives %s, promptly', async (route, code) => {
    const started = Date.now();
    expect(await fetchVllmMetrics(`${base}${route}`, 300)).toMatchObject({ ok: false, error: { code } });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('a port nobody listens on is VLLM_UNREACHABLE', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    expect(await fetchVllmMetrics(`http://127.0.0.1:${port}`, 1000)).toMatchObject({ ok: false, error: { code: 'VLLM_UNREACHABLE', message: expect.stringContaining('ECONNREFUSED') } });
  });

  it('not a URL is VLLM_URL_INVALID', async () => {
    expect(await fetchVllmMetrics('localhost:8000 please', 100)).toMatchObject({ ok: false, error: { code: 'VLLM_URL_INVALID' } });
  });
});
