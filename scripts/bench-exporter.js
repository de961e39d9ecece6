#!/usr/bin/env node
// `npm run bench:exporter` (and part of `npm run bench`): `gpu-layers serve` on the mock NVML
// (8 GPUs x 64 processes, interval 5 s) under 50 concurrent scrapers for 30 s (--seconds N to
// change), plus clients that misbehave meanwhile (a slowloris that never finishes its headers,
// half-open sockets, oversized headers, unknown paths and methods). Reports scrape latency
// percentiles, how many process-list calls NVML saw (the mock's trace) against the number of
// collections, and the exporter's RSS before and after. Rewrites the bench:exporter section of
// BENCHMARKS.md (--no-write: print only).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { writeBenchmarkSections } from './benchmark-sections.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { mockLibraries, writeScenario } = await import(path.join(root, 'dist/mock.js'));
const secondsFlag = process.argv.indexOf('--seconds');
const SECONDS = secondsFlag === -1 ? 30 : Number(process.argv[secondsFlag + 1]);
const SCRAPERS = 50;
const DEVICES = 8;
const PROCESSES = 64;
const INTERVAL_MS = 5000;
const MiB = 1024 ** 2;

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-exporter-'));
const scenarioFile = path.join(work, 'host.scenario');
const traceFile = path.join(work, 'trace.log');
writeScenario(scenarioFile, {
  devices: Array.from({ length: DEVICES }, (_, d) => ({
    uuid: `GPU-bench-${d}`,
    memory: { total: 85520809984, reserved: 570425344, used: PROCESSES * 256 * MiB, free: 85520809984 - 570425344 - PROCESSES * 256 * MiB },
    processes: Array.from({ length: PROCESSES }, (_, p) => ({ type: 'compute', pid: 100000 + d * 1000 + p, usedBytes: 256 * MiB })),
  })),
});
const libraries = mockLibraries();
const serve = spawn(process.execPath, [path.join(root, 'dist/cli/gpu-layers.cjs'), 'serve', '--port', '0', '--interval', `${INTERVAL_MS}ms`, '--no-host'], {
  env: { ...process.env, GPU_LAYERS_MOCK_SCENARIO: scenarioFile, GPU_LAYERS_MOCK_TRACE: traceFile, GPU_LAYERS_NVML_LIB: libraries.nvml, GPU_LAYERS_CUDA_LIB: libraries.cuda, GPU_LAYERS_STATS_DIR: '' },
});
process.on('exit', () => {
  serve.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
});
let stderr = '';
serve.stderr.on('data', (chunk) => (stderr += chunk));
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

function rssOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(status)[1]) * 1024;
}

function scrape(pathName = '/metrics', method = 'GET', headers = {}) {
  return new Promise((resolve) => {
    const started = performance.now();
    const req = request({ host: '127.0.0.1', port, path: pathName, method, headers, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    req.on('error', () => resolve({ status: 0, ms: performance.now() - started }));
    req.end();
  });
}

const processListCalls = () => (existsSync(traceFile) ? readFileSync(traceFile, 'utf8').split('\n').filter((l) => l.startsWith('nvmlDeviceGetComputeRunningProcesses')).length : 0);

// Warm up (the first collections, the JIT), then measure.
for (let i = 0; i < 20; i++) await scrape();
const rssBefore = rssOf(serve.pid);
const callsBefore = processListCalls();
const latencies = [];
const statuses = new Map();
const end = Date.now() + SECONDS * 1000;
const misbehaving = [];
const abuse = setInterval(() => {
  const slow = connect(port, '127.0.0.1', () => slow.write('GET /metrics HTTP/1.1\r\nHost: x\r\n'));
  slow.on('error', () => {});
  const halfOpen = connect(port, '127.0.0.1');
  halfOpen.on('error', () => {});
  misbehaving.push(slow, halfOpen);
  void scrape('/metrics', 'GET', { 'x-huge': 'a'.repeat(32 * 1024) });
  void scrape('/nope');
  void scrape('/metrics', 'DELETE');
}, 500);
await Promise.all(
  Array.from({ length: SCRAPERS }, async () => {
    while (Date.now() < end) {
      const { status, ms } = await scrape();
      statuses.set(status, (statuses.get(status) ?? 0) + 1);
      latencies.push(ms);
    }
  }),
);
clearInterval(abuse);
for (const socket of misbehaving) socket.destroy();
const calls = processListCalls() - callsBefore;
// RSS once the load is over and the exporter has collected twice more (what an agent keeps).
await new Promise((resolve) => setTimeout(resolve, 2 * INTERVAL_MS));
const rssAfter = rssOf(serve.pid);
const sorted = latencies.sort((a, b) => a - b);
const pct = (p) => sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
const collections = Math.floor((SECONDS * 1000) / INTERVAL_MS);
const body = await new Promise((resolve) => request({ host: '127.0.0.1', port, path: '/metrics' }, (res) => { let t = ''; res.on('data', (c) => (t += c)); res.on('end', () => resolve(t)); }).end());
const series = body.split('\n').filter((l) => l !== '' && !l.startsWith('#')).length;
serve.kill('SIGTERM');

// Leak check in this process, where a full GC can be forced (node --expose-gc): the same host,
// one collection, then 60,000 scrapes by 50 clients; the heap after GC before and after.
const { createExporter } = await import(path.join(root, 'dist/index.js'));
process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
delete process.env.GPU_LAYERS_MOCK_TRACE;
const inProcess = await createExporter({ intervalMs: 3_600_000, probe: { nvmlLibrary: libraries.nvml, cudaLibrary: false }, layers: { statsDir: null, host: false } });
const local = (await inProcess.listen(0)).port;
const localScrape = () => new Promise((resolve) => request({ host: '127.0.0.1', port: local, path: '/metrics', agent: false }, (res) => { res.resume(); res.on('end', resolve); }).end());
const heapAfterGc = () => {
  globalThis.gc?.();
  globalThis.gc?.();
  return process.memoryUsage().heapUsed;
};
for (let i = 0; i < 500; i++) await localScrape();
const heapBefore = heapAfterGc();
await Promise.all(Array.from({ length: SCRAPERS }, async () => { for (let i = 0; i < 1200; i++) await localScrape(); }));
const heapAfter = heapAfterGc();
await inProcess.close();
const gcNote = globalThis.gc === undefined ? ' (no --expose-gc: not after a full GC)' : '';

const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const today = new Date().toISOString().slice(0, 10);

const section = `<!-- bench:exporter:start -->
## Exporter under load: \`gpu-layers serve\`

${today}, ${os.cpus().length} x ${cpu}, Node.js ${process.version}. \`gpu-layers serve --interval 5s\` on the mock
NVML (${DEVICES} GPUs x ${PROCESSES} processes, ${series} series, ${(Buffer.byteLength(body) / 1024).toFixed(0)} KiB per scrape), ${SCRAPERS} concurrent
scrapers for ${SECONDS} s, each scraping again as soon as it has its answer; meanwhile, twice a
second, a client that never finishes its headers, a half-open socket, a 32 KiB header, an
unknown path and a DELETE. The scrapers and the exporter share the machine's CPUs.

| | |
| --- | --- |
| scrapes | ${latencies.length} (${(latencies.length / SECONDS).toFixed(0)}/s), statuses ${[...statuses].map(([s, n]) => `${s}: ${n}`).join(', ')} |
| scrape latency p50 / p99 / max | ${pct(0.5).toFixed(1)} ms / ${pct(0.99).toFixed(1)} ms / ${sorted[sorted.length - 1].toFixed(1)} ms |
| NVML process-list calls | ${calls} in ${SECONDS} s: ${(calls / DEVICES / 2).toFixed(1)} per device (count + rows), for ~${collections} collections |
| exporter RSS before / after (after: two intervals past the load) | ${(rssBefore / 2 ** 20).toFixed(1)} MiB / ${(rssAfter / 2 ** 20).toFixed(1)} MiB |
| heap after a full GC, before / after 60,000 scrapes (in-process)${gcNote} | ${(heapBefore / 2 ** 20).toFixed(1)} MiB / ${(heapAfter / 2 ** 20).toFixed(1)} MiB |

Targets (issue 7): p99 under 25 ms, NVML calls bounded by the interval whatever the scrape rate,
RSS flat. The RSS rise under load is V8 sizing its heap for 50 sockets at once; the heap after a
full GC is what would show a leak. The diagnosis window (up to 240 samples, older half thinned)
adds to it over the first hour of collections.
<!-- bench:exporter:end -->`;

console.log(section);
if (!process.argv.includes('--no-write')) writeBenchmarkSections(root, { exporter: section });
process.exit(0);
