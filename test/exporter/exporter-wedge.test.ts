/**
 * `gpu-layers serve` through a long NVML wedge, on its own schedule (test/exporter/exporter.test.ts
 * wedges a manually collected exporter for 1.2 s and checks one scrape; this covers the rest):
 * many scrapes, all answered quickly, for the whole wedge; the stale series flagged by
 * collect_success 0 with their last-collect timestamp frozen; and recovery without any help, with
 * the values and process set of the host as it is after the wedge, not as it was before.
 */
import type { ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, requireFile } from '../helpers/paths.js';
import { host, MiB } from '../helpers/scenarios.js';
import { startServe } from '../helpers/serve.js';

/** How long the wedged call sleeps: many collection intervals, more than ten deadlines. */
const WEDGE_MS = 5000;
const INTERVAL_MS = 500;
const TIMEOUT_MS = 300;

let mock: MockHost;
let serve: ChildProcess;
let port: number;
let stderr: () => string;

beforeAll(async () => {
  requireFile(cliPath, 'build the package first (npm ci runs the build)');
  mock = createMockHost(host(2, 2));
  const started = await startServe(['--port', '0', '--interval', `${INTERVAL_MS}ms`, '--timeout', `${TIMEOUT_MS}ms`, '--no-host'], mock.scenarioFile);
  serve = started.child;
  port = started.port;
  stderr = started.stderr;
}, 30_000);

afterAll(() => {
  serve?.kill('SIGKILL');
  mock?.remove();
});

function get(path: string): Promise<{ status: number; body: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
    });
    req.on('error', reject);
    req.end();
  });
}

const gauge = (body: string, name: string): number | undefined => {
  const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
  return match === null ? undefined : Number(match[1]);
};
const driverBytes = (body: string, pid: number): number | undefined => {
  const line = body.split('\n').find((l) => l.startsWith('gpu_layers_process_driver_memory_bytes{') && l.includes(`pid="${pid}"`));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
};

async function until(what: string, ms: number, test: (body: string) => boolean): Promise<string> {
  const end = performance.now() + ms;
  for (;;) {
    const { body } = await get('/metrics');
    if (test(body)) return body;
    if (performance.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}; last scrape:\n${body.slice(0, 2000)}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

it('serves stale series flagged with collect_success 0 through a 5 s wedge, scrapes fast throughout, then recovers with fresh values on its own', { timeout: 40_000 }, async () => {
  const before = host(2, 2);
  const healthy = await until('a first successful collection', 10_000, (body) => gauge(body, 'gpu_layers_collect_success') === 1);
  expect(driverBytes(healthy, 10001)).toBe(before.devices[0]!.processes![1]!.usedBytes);

  // The GPU wedges: the next sample's first call sleeps WEDGE_MS.
  mock.write(host(2, 2, { delay: [{ symbol: 'nvmlDeviceGetCount_v2', ms: WEDGE_MS }] }));
  const wedgedAt = Date.now();
  const flagged = await until('collect_success 0', INTERVAL_MS + TIMEOUT_MS + 2000, (body) => gauge(body, 'gpu_layers_collect_success') === 0);
  const frozenAt = gauge(flagged, 'gpu_layers_last_collect_timestamp_seconds')!;
  expect(frozenAt * 1000).toBeLessThanOrEqual(wedgedAt + 50);

  // After the wedge the host has changed: pid 10001 exited, pid 10005 started, 10000 grew.
  const after = host(2, 2);
  after.devices[0]!.processes = [
    { type: 'compute', pid: 10000, usedBytes: 3 * 1024 * MiB },
    { type: 'compute', pid: 10005, usedBytes: 512 * MiB },
  ];
  mock.write(after);

  // Until the stuck call returns, every scrape (one at a time and ten at once) is answered at once
  // with the series of before the wedge, flagged stale, and /healthz says why.
  const latencies: number[] = [];
  while (Date.now() < wedgedAt + WEDGE_MS - 400) {
    const answers = await Promise.all([get('/metrics'), ...Array.from({ length: 9 }, () => get('/metrics'))]);
    for (const { status, body, ms } of answers) {
      latencies.push(ms);
      expect(status).toBe(200);
      if (Date.now() >= wedgedAt + WEDGE_MS - 100) continue; // the stuck call may be returning
      expect(gauge(body, 'gpu_layers_collect_success')).toBe(0);
      expect(gauge(body, 'gpu_layers_last_collect_timestamp_seconds')).toBe(frozenAt);
      expect(driverBytes(body, 10001)).toBe(before.devices[0]!.processes![1]!.usedBytes);
      expect(driverBytes(body, 10005)).toBeUndefined();
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const health = await get('/healthz');
  expect(health.status).toBe(200);
  expect(health.body).toMatch(/the last collection failed: .*(did not return within 300 ms|waiting on the driver)/);
  latencies.sort((a, b) => a - b);
  expect(latencies.length).toBeGreaterThan(100);
  expect(latencies[Math.floor(latencies.length / 2)]!).toBeLessThan(100);
  expect(latencies[latencies.length - 1]!).toBeLessThan(1000);

  // The stuck call returns; the next scheduled collection (nothing calls collect here) succeeds
  // and exports the host as it is now.
  const recovered = await until('recovery', WEDGE_MS + 4 * INTERVAL_MS + 3000 - (Date.now() - wedgedAt), (body) => gauge(body, 'gpu_layers_collect_success') === 1);
  expect(Date.now() - wedgedAt).toBeGreaterThanOrEqual(WEDGE_MS - 100);
  expect(gauge(recovered, 'gpu_layers_last_collect_timestamp_seconds')! * 1000).toBeGreaterThan(wedgedAt + WEDGE_MS - 100);
  expect(driverBytes(recovered, 10000)).toBe(3 * 1024 * MiB);
  expect(driverBytes(recovered, 10005)).toBe(512 * MiB);
  expect(driverBytes(recovered, 10001)).toBeUndefined();
  expect((await get('/healthz')).body).not.toMatch(/failed/);
  // One warning for the wedge, not one per interval: the message changes (it counts the seconds
  // the call has waited), the failure does not.
  expect(stderr().match(/warning: collection failed/g)).toHaveLength(1);
});
