#!/usr/bin/env node
// Benchmark part "exporter-abuse" (issue 19, finding 6): `gpu-layers serve` on the mock NVML
// (8 GPUs x 64 processes, interval 5 s) scraped by 4 clients, each every 50 ms (many times what a
// few Prometheus servers ask; a closed loop would measure V8 sizing its heap), first alone for
// --seconds (default 15), then as long again while abusive clients attack it: 200 connections
// (--abusers) that each pipeline 3,000 GETs (--pipelined) at the start and never read, and 20
// clients that send their headers a byte a second. Both phases in one run, on one server, so the
// ratios compare like with like. Reports each phase's scrape latency (p50, p99, max), failed
// scrapes, the exporter's RSS before and at its peak (read every 20 ms from /proc), the first
// scrape sent just after the flood, and when the slow-header clients were cut. The server runs
// with the DaemonSet's NODE_OPTIONS, against its memory limit. Results as JSON (--json FILE).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { busyHostScenario } from './busy-host-scenario.js';
import { emitResults, flagValue, machineFacts, percentile, root } from './machine.js';

const { mockLibraries, writeScenario } = await import(path.join(root, 'dist/mock.js'));
const SECONDS = Number(flagValue('--seconds', 15));
const ABUSERS = Number(flagValue('--abusers', 200));
const PIPELINED = Number(flagValue('--pipelined', 3000));
const SLOW_HEADER_CLIENTS = 20;
const SCRAPERS = 4;
const SCRAPE_GAP_MS = 50;
const DEVICES = 8;
const PROCESSES = 64;
const INTERVAL_MS = 5000;
const MiB = 2 ** 20;
// The exporter runs as the DaemonSet runs it: its memory limit is the target, and its NODE_OPTIONS
// (V8's old-space cap) are the child's.
const daemonSet = readFileSync(path.join(root, 'deploy/kubernetes/gpu-layers-daemonset.yaml'), 'utf8');
const DAEMONSET_LIMIT = Number(/limits:\s*\n\s*cpu: \S+\s*\n\s*memory: (\d+)Mi/.exec(daemonSet)[1]) * MiB;
const DAEMONSET_NODE_OPTIONS = /- name: NODE_OPTIONS\s*\n\s*value: (\S+)/.exec(daemonSet)?.[1] ?? '';

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-exporter-abuse-'));
const scenarioFile = path.join(work, 'host.scenario');
writeScenario(scenarioFile, busyHostScenario(DEVICES, PROCESSES));
const libraries = mockLibraries();
const sockets = [];
let child = null;
process.on('exit', () => {
  for (const socket of sockets) socket.destroy();
  child?.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

child = spawn(process.execPath, [path.join(root, 'dist/cli/gpu-layers.cjs'), 'serve', '--port', '0', '--interval', `${INTERVAL_MS}ms`, '--no-host'], {
  env: { ...process.env, NODE_OPTIONS: DAEMONSET_NODE_OPTIONS, GPU_LAYERS_MOCK_SCENARIO: scenarioFile, GPU_LAYERS_NVML_LIB: libraries.nvml, GPU_LAYERS_CUDA_LIB: libraries.cuda, GPU_LAYERS_STATS_DIR: '' },
});
let stderr = '';
child.stderr.on('data', (chunk) => (stderr += chunk));
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`serve did not start: ${stderr}`)), 20_000);
  const check = setInterval(() => {
    const match = /:(\d+)\/metrics/.exec(stderr);
    if (match) {
      clearInterval(check);
      clearTimeout(timer);
      resolve(Number(match[1]));
    }
  }, 50);
});

const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))[1]) * 1024;

/** One scrape the way Prometheus makes it (gzip), on a connection of its own; status 0: failed. */
function scrape() {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: '/metrics', headers: { 'accept-encoding': 'gzip' }, agent: false, timeout: 30_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end();
  });
}

/** SCRAPERS scrapers for SECONDS, SCRAPE_GAP_MS apart, RSS read meanwhile; `attack` runs at the start. */
async function phase(attack) {
  const rssBefore = rss();
  let rssPeak = rssBefore;
  const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, rss())), 20);
  const latencies = [];
  const statuses = {};
  const end = Date.now() + SECONDS * 1000;
  const attacked = attack();
  await Promise.all(
    Array.from({ length: SCRAPERS }, async () => {
      while (Date.now() < end) {
        const { status, ms } = await scrape();
        statuses[status] = (statuses[status] ?? 0) + 1;
        latencies.push(ms);
        await new Promise((resolve) => setTimeout(resolve, SCRAPE_GAP_MS));
      }
    }),
  );
  clearInterval(sampler);
  return {
    ...(await attacked),
    scrapes: latencies.length,
    statuses,
    failedScrapes: latencies.length - (statuses[200] ?? 0),
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: percentile(latencies, 1) },
    rssBytes: { before: rssBefore, peak: rssPeak },
  };
}

/** The abusive clients: the pipelining flood at once, the slow-header clients a byte a second. */
async function abuse() {
  const flood = Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(PIPELINED));
  for (let i = 0; i < ABUSERS; i++) {
    const socket = connect(port, '127.0.0.1', () => socket.write(flood));
    socket.pause();
    socket.on('error', () => {});
    sockets.push(socket);
  }
  const afterFlood = scrape();
  const line = 'GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ';
  const cutAfterMs = await Promise.all(
    Array.from({ length: SLOW_HEADER_CLIENTS }, () => {
      const started = performance.now();
      const socket = connect(port, '127.0.0.1');
      socket.on('error', () => {});
      sockets.push(socket);
      let sent = 0;
      const send = () => socket.writable && socket.write(line[sent++ % line.length]);
      send();
      const trickle = setInterval(send, 1000);
      return new Promise((resolve) => {
        socket.on('close', () => {
          clearInterval(trickle);
          resolve(performance.now() - started);
        });
        setTimeout(() => {
          clearInterval(trickle);
          resolve(null);
        }, 30_000);
      });
    }),
  );
  const { status, ms } = await afterFlood;
  const cut = cutAfterMs.filter((ms) => ms !== null);
  return {
    scrapeAfterFlood: { status, ms },
    slowHeaderClients: { clients: SLOW_HEADER_CLIENTS, cut: cut.length, maxCutAfterMs: cut.length === 0 ? null : Math.max(...cut) },
  };
}

for (let i = 0; i < 20; i++) await scrape(); // the first collections, the JIT
const clean = await phase(async () => ({}));
const abused = await phase(abuse);

emitResults({
  machine: machineFacts(),
  devices: DEVICES,
  processesPerDevice: PROCESSES,
  intervalMs: INTERVAL_MS,
  scrapers: SCRAPERS,
  scrapeGapMs: SCRAPE_GAP_MS,
  seconds: SECONDS,
  abusers: ABUSERS,
  pipelined: PIPELINED,
  daemonSetLimitBytes: DAEMONSET_LIMIT,
  nodeOptions: DAEMONSET_NODE_OPTIONS,
  clean,
  abused,
});
// Target: the exporter's peak under attack within the DaemonSet's limit, no failed scrape.
process.exit(abused.rssBytes.peak < DAEMONSET_LIMIT && abused.failedScrapes === 0 ? 0 : 1);
