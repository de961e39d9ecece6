/**
 * The exporter embedded in an agent, in-process on the real addon and the mock NVML: its families
 * registered into the caller's prom-client Registry (and removed by close()), a clash refused
 * before NVML is touched; `exporter.handler` mounted in the caller's own node:http server
 * (/metrics gzipped when asked, /healthz, a landing page on / listing both, under a prefix the
 * caller strips); gpu_layers_build_info; process metrics only when asked for.
 */
import { createServer, request, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

import { Counter, Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createExporter, type Exporter } from '../../src/exporter/create-exporter.js';
import { gpuLayersVersion } from '../../src/exporter/exporter-metrics.js';
import { acceptsGzip } from '../../src/exporter/metrics-server.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

let mock: MockHost;
const probe = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false as const, timeoutMs: 1000 };
const layers = { statsDir: null, host: false };
const base = { intervalMs: 3_600_000, probe, layers };

beforeAll(() => {
  mock = createMockHost(host(2, 1));
});
afterAll(() => mock.remove());

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** The caller's own server: its own routes, and the exporter's handler under /gpu (prefix stripped). */
async function callerServer(handler: RequestListener): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.url === '/own') return res.end('the agent\n');
    if (req.url?.startsWith('/gpu/')) {
      req.url = req.url.slice('/gpu'.length);
      return handler(req, res);
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

describe('createExporter({ registry })', () => {
  it("registers every family into the caller's registry beside its own metrics, and close() takes them out", async () => {
    const registry = new Registry();
    const own = new Counter({ name: 'agent_requests_total', help: "the agent's own", registers: [registry] });
    own.inc(3);
    const exporter = await createExporter({ ...base, registry });
    try {
      const text = await registry.metrics();
      expect(text).toContain('agent_requests_total 3');
      expect(text).toMatch(/^gpu_layers_device_memory_total_bytes\{gpu="0",uuid="GPU-[^"]+"\} \d+$/m);
      expect(text).toMatch(/^gpu_layers_device_up\{gpu="1",uuid="GPU-[^"]+"\} 1$/m);
      expect(text).toMatch(/^gpu_layers_collect_success 1$/m);
      // Values follow the collections: GPU 1 gone, collected, and the caller's registry shows it.
      mock.write({ ...host(2, 1), rc: [{ symbol: '*', rc: 15, device: 1 }] });
      await exporter.collect();
      expect(await registry.metrics()).toMatch(/^gpu_layers_device_up\{gpu="1",uuid="GPU-[^"]+"\} 0$/m);
    } finally {
      mock.write(host(2, 1));
      await exporter.close();
    }
    const after = await registry.metrics();
    expect(after).toContain('agent_requests_total 3');
    expect(after).not.toContain('gpu_layers_');
  });

  it('refuses a registry that already has one of its names, before opening NVML', async () => {
    const registry = new Registry();
    new Counter({ name: 'gpu_layers_collect_success', help: 'taken', registers: [registry] });
    // An NVML that does not exist: a refusal after opening it would be NVML_LIBRARY_NOT_FOUND.
    await expect(createExporter({ ...base, probe: { nvmlLibrary: '/nonexistent/libnvidia-ml.so.1' }, registry })).rejects.toMatchObject({
      code: 'INVALID_OPTIONS',
      message: expect.stringContaining('gpu_layers_collect_success'),
    });
  });
});

describe('exporter.handler mounted in the caller\'s server', () => {
  let exporter: Exporter;
  let server: Server;
  let port: number;

  beforeAll(async () => {
    mock.write(host(2, 1));
    exporter = await createExporter(base);
    ({ server, port } = await callerServer(exporter.handler));
  });
  afterAll(async () => {
    server.close();
    server.closeAllConnections();
    await exporter.close();
  });

  it('serves /metrics plain, and gzipped when the client accepts gzip', async () => {
    const text = await exporter.metrics();
    const plain = await get(port, '/gpu/metrics');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(plain.headers.vary).toBe('Accept-Encoding');
    expect(plain.body.toString('utf8')).toBe(text);
    const zipped = await get(port, '/gpu/metrics', { 'accept-encoding': 'gzip, deflate' });
    expect(zipped.status).toBe(200);
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(Number(zipped.headers['content-length'])).toBe(zipped.body.length);
    expect(zipped.body.length).toBeLessThan(plain.body.length);
    expect(gunzipSync(zipped.body).toString('utf8')).toBe(text);
    expect((await get(port, '/gpu/metrics', { 'accept-encoding': 'gzip;q=0, identity' })).headers['content-encoding']).toBeUndefined();
  });

  it('serves /healthz and a landing page on / that links both, relative to where it is mounted', async () => {
    expect((await get(port, '/gpu/healthz')).body.toString()).toMatch(/^ok: serving; last successful collection/);
    const page = await get(port, '/gpu/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = page.body.toString('utf8');
    expect(html).toContain('<a href="metrics">/metrics</a>');
    expect(html).toContain('<a href="healthz">/healthz</a>');
    expect(html).toContain(gpuLayersVersion());
    expect((await get(port, '/gpu/nothing')).status).toBe(404);
    expect((await get(port, '/own')).body.toString()).toBe('the agent\n');
  });

  it('gpu_layers_build_info carries the version, the driver, NVML and the CUDA version', async () => {
    const text = await exporter.metrics();
    const scenario = host(2, 1);
    // The scenario's CUDA driver version is 12040, NVML's encoding of 12.4.
    expect(scenario.cudaDriverVersion).toBe(12040);
    expect(text).toContain(`gpu_layers_build_info{version="${gpuLayersVersion()}",driver="${scenario.driverVersion}",nvml="${scenario.nvmlVersion}",cuda="12.4"} 1`);
    expect(gpuLayersVersion()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('has no process metrics unless asked for', async () => {
    const text = await exporter.metrics();
    expect(text).not.toMatch(/^(gpu_layers_exporter_)?(process|nodejs)_/m);
  });
});

describe('processMetrics: true', () => {
  it("adds prom-client's process metrics, prefixed gpu_layers_exporter_", async () => {
    const exporter = await createExporter({ ...base, processMetrics: true });
    try {
      const text = await exporter.metrics();
      expect(text).toMatch(/^gpu_layers_exporter_process_cpu_seconds_total \S+$/m);
      expect(text).toMatch(/^gpu_layers_exporter_process_resident_memory_bytes \d+$/m);
      expect(text).toMatch(/^# TYPE gpu_layers_exporter_nodejs_eventloop_lag_seconds gauge$/m);
      expect(text).not.toMatch(/^(process|nodejs)_/m);
    } finally {
      await exporter.close();
    }
  });
});

describe('acceptsGzip', () => {
  it.each([
    ['gzip', true],
    ['gzip, deflate, br', true],
    ['deflate, x-gzip', true],
    ['*', true],
    ['gzip;q=0', false],
    ['gzip;q=0, *', false],
    ['identity', false],
    ['', false],
    ['br;q=1.0, gzip;q=0.5', true],
  ])('%j: %s', (header, accepted) => {
    expect(acceptsGzip(header)).toBe(accepted);
  });
});
