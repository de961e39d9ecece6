/**
 * `gpu-layers serve` against clients that try to grow its memory or hold it (issue 19, finding
 * 6): a hundred connections that pipeline thousands of GETs each and never read (before the
 * limits: +470 MiB of RSS here, +1.1 GB at 200 x 3000), more connections than the cap, a
 * pipeline past the per-connection limit, headers sent a byte a second, a body sent slowly.
 * The limits are src/exporter/client-limits.ts's.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { CLIENT_LIMITS } from '../../src/exporter/client-limits.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, requireFile } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';
import { startServe } from '../helpers/serve.js';

const MiB = 1024 ** 2;
/** The pipelining flood: 120 x 2,000 GETs (68 KB each, more than one 64 KiB read). */
const ABUSERS = 120;
const PIPELINED = 2000;
/**
 * Peak RSS growth allowed under the flood. With the limits it was 70-145 MiB here (garbage of
 * the one read node parses per cut connection, until V8 collects it); without them 470 MiB, and
 * growing with every abuser. The DaemonSet's limit is 256 MiB, an exporter at rest ~100-140 MiB.
 */
const MAX_RSS_GROWTH = 250 * MiB;

let mock: MockHost;
let serve: ChildProcess;
let port: number;
const opened: Socket[] = [];

beforeAll(async () => {
  requireFile(cliPath, 'build the package first (npm ci runs the build)');
  mock = createMockHost(host(2, 2));
  const started = await startServe(['--port', '0', '--interval', '60s', '--no-host'], mock.scenarioFile);
  serve = started.child;
  port = started.port;
}, 30_000);

afterAll(() => {
  for (const socket of opened) socket.destroy();
  serve?.kill('SIGKILL');
  mock?.remove();
});

function rssOf(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/** A well-behaved scrape on a connection of its own: status and milliseconds (status 0: failed). */
function scrape(timeoutMs = 20_000): Promise<{ status: number; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: '/metrics', agent: false, timeout: timeoutMs }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end();
  });
}

/** A raw connection to serve, kept for afterAll; what it receives accumulates in `received()`. */
function open(): { socket: Socket; received: () => string; closed: Promise<number> } {
  const started = performance.now();
  const socket = connect(port, '127.0.0.1');
  opened.push(socket);
  let text = '';
  socket.on('data', (chunk) => (text += chunk.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<number>((resolve) => socket.on('close', () => resolve(performance.now() - started)));
  return { socket, received: () => text, closed };
}

const within = <T>(promise: Promise<T>, ms: number): Promise<T | 'still open'> =>
  Promise.race([promise, new Promise<'still open'>((resolve) => setTimeout(() => resolve('still open'), ms))]);

const statusCount = (text: string): number => text.match(/^HTTP\/1\.1 \d{3} /gm)?.length ?? 0;

it(`${ABUSERS} clients pipelining ${PIPELINED} GETs each and never reading: RSS stays bounded, scrapes stay fast`, { timeout: 60_000 }, async () => {
  for (let i = 0; i < 5; i++) expect((await scrape()).status).toBe(200);
  const before = rssOf(serve.pid!);
  let peak = before;
  const sampler = setInterval(() => (peak = Math.max(peak, rssOf(serve.pid!))), 20);
  const flood = Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(PIPELINED));
  for (let i = 0; i < ABUSERS; i++) {
    const socket = connect(port, '127.0.0.1', () => socket.write(flood));
    socket.pause();
    socket.on('error', () => {});
    opened.push(socket);
  }
  // A scrape sent just after the flood waits for the reads queued before it, within Prometheus's
  // default scrape timeout; the ones after it, abusers still connected, are answered at once.
  const during = await scrape();
  expect(during.status).toBe(200);
  expect(during.ms).toBeLessThan(10_000);
  const after: number[] = [];
  for (let i = 0; i < 10; i++) {
    const { status, ms } = await scrape();
    expect(status).toBe(200);
    after.push(ms);
  }
  await new Promise((resolve) => setTimeout(resolve, 500));
  clearInterval(sampler);
  after.sort((a, b) => a - b);
  expect(after[5]!).toBeLessThan(100);
  expect(after[9]!).toBeLessThan(1000);
  expect(peak - before, `RSS ${(before / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB`).toBeLessThan(MAX_RSS_GROWTH);
});

it(`a connection with more than ${CLIENT_LIMITS.maxWaitingResponses} requests waiting for their answers is cut; one within the limit is served`, async () => {
  const request = 'GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n';
  const within_ = open();
  within_.socket.write(request.repeat(CLIENT_LIMITS.maxWaitingResponses));
  const past = open();
  past.socket.write(request.repeat(CLIENT_LIMITS.maxWaitingResponses + 12));
  expect(await within(past.closed, 3000)).not.toBe('still open');
  expect(statusCount(past.received())).toBeLessThanOrEqual(CLIENT_LIMITS.maxWaitingResponses);
  await new Promise((resolve) => setTimeout(resolve, 300));
  expect(statusCount(within_.received())).toBe(CLIENT_LIMITS.maxWaitingResponses);
  expect(within_.socket.destroyed).toBe(false);
  within_.socket.destroy();
});

it(`past ${CLIENT_LIMITS.maxConnections} connections the idlest gives way at once, not at the header deadline, and a scrape still gets in`, async () => {
  const silent = Array.from({ length: 3 * CLIENT_LIMITS.maxConnections }, () => open());
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const stillOpen = () => silent.filter((c) => !c.socket.destroyed && !c.socket.closed).length;
  expect(stillOpen()).toBeLessThanOrEqual(CLIENT_LIMITS.maxConnections);
  const { status, ms } = await scrape();
  expect(status).toBe(200);
  expect(ms).toBeLessThan(1000);
  expect(stillOpen()).toBeLessThanOrEqual(CLIENT_LIMITS.maxConnections - 1);
  for (const c of silent) c.socket.destroy();
});

it('headers sent a byte a second are cut within a second of the header deadline; a body is never waited for', { timeout: 20_000 }, async () => {
  const line = 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ';
  const slowHeaders = open();
  slowHeaders.socket.write(line[0]!);
  let sent = 1;
  const trickle = setInterval(() => slowHeaders.socket.write(line[sent++ % line.length]!), 1000);
  const slowBody = open();
  slowBody.socket.write('POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nx');
  const drip = setInterval(() => slowBody.socket.write('x'), 200);
  try {
    const bodyClosedAfter = await within(slowBody.closed, 3000);
    expect(slowBody.received()).toMatch(/^HTTP\/1\.1 405 /);
    expect(bodyClosedAfter).not.toBe('still open');
    const limit = CLIENT_LIMITS.headersTimeoutMs + CLIENT_LIMITS.deadlineCheckMs + 1500;
    const headersClosedAfter = await within(slowHeaders.closed, limit);
    expect(headersClosedAfter, `cut after ${String(headersClosedAfter)} ms`).not.toBe('still open');
    expect(headersClosedAfter as number).toBeGreaterThanOrEqual(CLIENT_LIMITS.headersTimeoutMs - 100);
    expect(slowHeaders.received()).toMatch(/^HTTP\/1\.1 408 /);
  } finally {
    clearInterval(trickle);
    clearInterval(drip);
  }
});
