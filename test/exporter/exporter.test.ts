/**
 * The exporter on the real addon and the mock NVML (in-process, createExporter): the families and
 * their values, series of an exited process disappearing, NVML's process list called once per
 * device per collection however often it is scraped, a wedged GPU (collect_success 0, the last
 * series kept, scrapes still answered, recovery), the HTTP surface (404, 405, 431, a slow client
 * not holding others up), and promtool's check of the exposition.
 */
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { connect } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { createExporter, type Exporter } from '../../src/exporter/create-exporter.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { nodeGypBuild, repoRoot } from '../helpers/paths.js';
import { host, MiB } from '../helpers/scenarios.js';
import { testTool } from '../helpers/test-tools.js';

let mock: MockHost;
const probe = { nvmlLibrary: nodeGypBuild.mockNvml, cudaLibrary: false as const, timeoutMs: 300 };
const layers = { statsDir: null, host: false };

beforeAll(() => {
  mock = createMockHost(host(2, 2), { trace: true });
});
afterAll(() => mock.remove());

function get(port: number, path: string, method = 'GET', headers: Record<string, string> = {}): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, headers }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Value of the one series of `name` whose labels include `labels`. */
function valueOf(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('exporter', () => {
  let exporter: Exporter;
  let port: number;

  beforeAll(async () => {
    mock.write(host(2, 2));
    exporter = await createExporter({ intervalMs: 3_600_000, probe, layers });
    port = (await exporter.listen(0)).port;
  });
  afterAll(async () => {
    await exporter.close();
  });

  it('exports each device and process with its layers, with HELP on every family', async () => {
    const text = (await get(port, '/metrics')).body;
    const scenario = host(2, 2);
    for (const [d, device] of scenario.devices.entries()) {
      expect(valueOf(text, 'gpu_layers_device_memory_total_bytes', { gpu: String(d) })).toBe(device.memory!.total);
      expect(valueOf(text, 'gpu_layers_device_memory_bytes', { gpu: String(d), state: 'used' })).toBe(device.memory!.used);
      for (const p of device.processes!) {
        expect(valueOf(text, 'gpu_layers_process_driver_memory_bytes', { gpu: String(d), pid: String(p.pid) })).toBe(p.usedBytes);
      }
    }
    expect(valueOf(text, 'gpu_layers_collect_success', {}) ?? Number(/^gpu_layers_collect_success (\d)/m.exec(text)?.[1])).toBe(1);
    const families = [...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]);
    const helped = [...text.matchAll(/^# HELP (\S+) \S/gm)].map((m) => m[1]);
    expect(helped).toEqual(families);
    expect(families).toEqual(expect.arrayContaining(['gpu_layers_process_outside_allocator_bytes', 'gpu_layers_finding', 'gpu_layers_last_collect_timestamp_seconds']));
  });

  it('promtool check metrics finds no problem in the exposition', async () => {
    const text = (await get(port, '/metrics')).body;
    const check = spawnSync(testTool('promtool'), ['check', 'metrics'], { input: text, encoding: 'utf8' });
    expect(check.error).toBeUndefined();
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });

  it('scrapes never reach NVML: the process list is read once per device per collection', async () => {
    const calls = () => mock.trace().filter((line) => line.startsWith('nvmlDeviceGetComputeRunningProcesses')).length;
    const before = calls();
    await Promise.all(Array.from({ length: 50 }, () => get(port, '/metrics')));
    expect(calls()).toBe(before);
    await exporter.collect();
    // Two calls per device per collection: the count, then the rows.
    expect(calls() - before).toBeLessThanOrEqual(2 * 2);
    expect(calls() - before).toBeGreaterThan(0);
  });

  it('the series of an exited process disappear with it', async () => {
    const scenario = host(2, 2);
    scenario.devices[0]!.processes = scenario.devices[0]!.processes!.slice(0, 1);
    mock.write(scenario);
    await exporter.collect();
    const text = (await get(port, '/metrics')).body;
    expect(valueOf(text, 'gpu_layers_process_driver_memory_bytes', { pid: '10000' })).toBe(64 * MiB);
    expect(text).not.toMatch(/pid="10001"/);
    mock.write(host(2, 2));
    await exporter.collect();
  });

  it('a wedged GPU: collect_success 0, the last series kept, scrapes answered at once; then it recovers', async () => {
    mock.write(host(2, 2, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: 1200 }] }));
    await exporter.collect();
    const started = performance.now();
    const wedged = await get(port, '/metrics');
    expect(performance.now() - started).toBeLessThan(1000);
    expect(wedged.body).toMatch(/^gpu_layers_collect_success 0$/m);
    expect(valueOf(wedged.body, 'gpu_layers_process_driver_memory_bytes', { pid: '10001' })).toBe(128 * MiB);
    expect((await get(port, '/healthz')).body).toMatch(/the last collection failed: .*did not return within 300 ms/);
    mock.write(host(2, 2));
    // The stuck call returns after its delay; until then collections fail at once.
    await new Promise((resolve) => setTimeout(resolve, 1300));
    await exporter.collect();
    expect((await get(port, '/metrics')).body).toMatch(/^gpu_layers_collect_success 1$/m);
  });

  it('only GET /metrics, /healthz and the landing page; 404, 405 with Allow, 431 for huge headers', async () => {
    expect((await get(port, '/healthz')).status).toBe(200);
    expect((await get(port, '/')).status).toBe(200);
    expect((await get(port, '/index.html')).status).toBe(404);
    expect((await get(port, '/metrics/x')).status).toBe(404);
    const post = await get(port, '/metrics', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET');
    expect((await get(port, '/metrics', 'GET', { 'x-huge': 'a'.repeat(32 * 1024) })).status).toBe(431);
  });

  it('a client that never finishes its headers does not hold up other scrapes', async () => {
    const slow = connect(port, '127.0.0.1');
    await new Promise((resolve) => slow.once('connect', resolve));
    slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n');
    const halfOpen = connect(port, '127.0.0.1');
    await new Promise((resolve) => halfOpen.once('connect', resolve));
    const started = performance.now();
    expect((await get(port, '/metrics')).status).toBe(200);
    expect(performance.now() - started).toBeLessThan(1000);
    slow.destroy();
    halfOpen.destroy();
  });
});

describe('createExporter options', () => {
  it('refuses an interval under 250 ms before touching NVML', async () => {
    await expect(createExporter({ intervalMs: 100, probe, layers })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
  });
});

describe('exporter labels from /proc', () => {
  it('labels a containerised process with its container id and pod UID, read from --proc-root', async () => {
    const scenario = host(1, 0);
    scenario.devices[0]!.processes = [{ type: 'compute', pid: 4242, usedBytes: 512 * MiB }];
    mock.write(scenario);
    const exporter = await createExporter({ intervalMs: 3_600_000, probe, layers: { statsDir: null, procRoot: path.join(repoRoot, 'test/fixtures/proc') } });
    try {
      const text = await exporter.metrics();
      const line = text.split('\n').find((l) => l.startsWith('gpu_layers_process_driver_memory_bytes{') && l.includes('pid="4242"'))!;
      expect(line).toContain('container_id="5b1e9f3c7a2d"');
      expect(line).toContain('pod_uid="3f2b9c1e-8d4a-4f7e-9b2c-1a5d6e7f8a9b"');
      expect(valueOf(text, 'gpu_layers_process_host_memory_bytes', { pid: '4242', kind: 'anon' })).toBe(6291456 * 1024);
    } finally {
      await exporter.close();
      mock.write(host(2, 2));
    }
  });
});
