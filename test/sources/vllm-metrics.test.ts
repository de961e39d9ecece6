/**
 * vLLM /metrics: both metric generations from fixtures, and a real local HTTP server for the
 * failures (HTML, empty, malformed, HTTP errors, refused, a server that never answers).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { fetchVllmMetrics, metricsUrl, readVllmMetricsText } from '../../src/sources/vllm-metrics.js';

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
