#!/usr/bin/env node
// Benchmark part "exporter": `gpu-layers serve` on the mock NVML (8 GPUs x 64 processes, interval
// 5 s) under 50 concurrent scrapers for 30 s (--seconds N to change), plus clients that misbehave
// meanwhile (a slowloris that never finishes its headers, half-open sockets, oversized headers,
// unknown paths and methods). The comparison is the floor: a bare node:http server answering the
// same exposition bytes from memory, under the same load on the same machine. Also counts the
// process-list calls NVML saw (the mock's trace) against the collections, the exporter's RSS,
// and, in this process after full GCs, the heap before and after 60,000 scrapes. Results as JSON
// (--json FILE); run with node --expose-gc.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';

import { busyHostScenario } from './busy-host-scenario.js';
import { emitResults, flagValue, machineFacts, percentile, root } from './machine.js';

const { mockLibraries, writeScenario } = await import(path.join(root, 'dist/mock.js'));
const SECONDS = Number(flagValue('--seconds', 30));
const SCRAPERS = 50;
const DEVICES = 8;
const PROCESSES = 64;
const INTERVAL_MS = 5000;
const MiB = 1024 ** 2;

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-exporter-'));
const scenarioFile = path.join(work, 'host.scenario');
const traceFile = path.join(work, 'trace.log');
writeScenario(scenarioFile, busyHostScenario(DEVICES, PROCESSES));
const libraries = mockLibraries();
const children = [];
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});

/** Starts a server process and resolves with it and its port, read from a line on its stderr. */
function startServer(args, env) {
  const child = spawn(process.execPath, args, { env });
  children.push(child);
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} did not start: ${stderr}`)), 20_000);
    const check = setInterval(() => {
      const match = /:(\d+)\/metrics/.exec(stderr);
      if (match) {
        clearInterval(check);
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]) });
      }
    }, 50);
  });
}

function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) * 1024;
}

function scrape(port, pathName = '/metrics', method = 'GET', headers = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: pathName, method, headers, agent: false }, (res) => {
      let bytes = 0;
      res.on('data', (chunk) => (bytes += chunk.length));
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started, bytes }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started, bytes: 0 }));
    req.end();
  });
}

function body(port) {
  return new Promise((resolve) => {
    request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let text = '';
      res.on('data', (chunk) => (text += chunk));
      res.on('end', () => resolve(text));
    }).end();
  });
}

/** SCRAPERS closed-loop scrapers for SECONDS, with misbehaving clients twice a second. */
async function load(port) {
  for (let i = 0; i < 20; i++) await scrape(port); // warm-up: the first collections, the JIT
  const latencies = [];
  const statuses = {};
  const end = Date.now() + SECONDS * 1000;
  const misbehaving = [];
  const abuse = setInterval(() => {
    const slow = connect(port, '127.0.0.1', () => slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'));
    slow.on('error', () => {});
    const halfOpen = connect(port, '127.0.0.1');
    halfOpen.on('error', () => {});
    misbehaving.push(slow, halfOpen);
    void scrape(port, '/metrics', 'GET', { 'x-huge': 'a'.repeat(32 * 1024) });
    void scrape(port, '/nope');
    void scrape(port, '/metrics', 'DELETE');
  }, 500);
  await Promise.all(
    Array.from({ length: SCRAPERS }, async () => {
      while (Date.now() < end) {
        const { status, ms } = await scrape(port);
        statuses[status] = (statuses[status] ?? 0) + 1;
        latencies.push(ms);
      }
    }),
  );
  clearInterval(abuse);
  for (const socket of misbehaving) socket.destroy();
  return {
    scrapes: latencies.length,
    perSecond: latencies.length / SECONDS,
    statuses,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: percentile(latencies, 1) },
  };
}

const processListCalls = () => (existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.startsWith('nvmlDeviceGetComputeRunningProcesses')).length : 0);

// 1. The exporter.
const serve = await startServer([path.join(root, 'dist/cli/gpu-layers.cjs'), 'serve', '--port', '0', '--interval', `${INTERVAL_MS}ms`, '--no-host'], {
  ...process.env,
  GPU_LAYERS_MOCK_SCENARIO: scenarioFile,
  GPU_LAYERS_MOCK_TRACE: traceFile,
  GPU_LAYERS_NVML_LIB: libraries.nvml,
  GPU_LAYERS_CUDA_LIB: libraries.cuda,
  GPU_LAYERS_STATS_DIR: '',
});
await scrape(serve.port);
const rssBefore = rssOf(serve.child.pid);
const callsBefore = processListCalls();
const exporterLoad = await load(serve.port);
const calls = processListCalls() - callsBefore;
// RSS once the load is over and the exporter has collected twice more (what an agent keeps).
await new Promise((resolve) => setTimeout(resolve, 2 * INTERVAL_MS));
const rssAfter = rssOf(serve.child.pid);
const exposition = await body(serve.port);
serve.child.kill('SIGTERM');

// 2. The floor: the same bytes from a bare node:http server, under the same load.
const expositionFile = path.join(work, 'exposition.txt');
writeFileSync(expositionFile, exposition);
const floorScript = `
const body = require('node:fs').readFileSync(process.argv[1]);
const server = require('node:http').createServer((req, res) => {
  if (req.method !== 'GET' || req.url !== '/metrics') { res.statusCode = req.method !== 'GET' ? 405 : 404; res.end(); return; }
  res.setHeader('content-type', 'text/plain; version=0.0.4; charset=utf-8');
  res.end(body);
});
server.listen(0, '127.0.0.1', () => process.stderr.write('listening on http://127.0.0.1:' + server.address().port + '/metrics\\n'));`;
const floor = await startServer(['-e', floorScript, expositionFile], process.env);
const floorLoad = await load(floor.port);
floor.child.kill('SIGTERM');

// 3. Leak check in this process, where a full GC can be forced (node --expose-gc): the same host,
// one collection, then 60,000 scrapes by 50 clients; the heap after GC before and after.
const { createExporter } = await import(path.join(root, 'dist/index.js'));
process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
delete process.env.GPU_LAYERS_MOCK_TRACE;
const inProcess = await createExporter({ intervalMs: 3_600_000, probe: { nvmlLibrary: libraries.nvml, cudaLibrary: false }, layers: { statsDir: null, host: false } });
const local = (await inProcess.listen(0)).port;
const heapAfterGc = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};
for (let i = 0; i < 500; i++) await scrape(local);
const heapBefore = heapAfterGc();
await Promise.all(Array.from({ length: SCRAPERS }, async () => { for (let i = 0; i < 1200; i++) await scrape(local); }));
const heapAfter = heapAfterGc();
await inProcess.close();

emitResults({
  machine: machineFacts(),
  devices: DEVICES,
  processesPerDevice: PROCESSES,
  intervalMs: INTERVAL_MS,
  scrapers: SCRAPERS,
  seconds: SECONDS,
  series: exposition.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length,
  expositionBytes: Buffer.byteLength(exposition),
  exporter: exporterLoad,
  floor: floorLoad,
  processListCalls: calls,
  collections: Math.floor((SECONDS * 1000) / INTERVAL_MS),
  rssBytes: { before: rssBefore, after: rssAfter },
  heapAfterGcBytes: globalThis.gc === undefined ? null : { before: heapBefore, after: heapAfter, scrapes: SCRAPERS * 1200 },
});
process.exit(0);
