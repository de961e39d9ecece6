#!/usr/bin/env node
// Benchmark part "probe": gpu-layers against pynvml on the same mock NVML and scenario (8 GPUs x
// 64 processes): a warm probe.sample() against the same NVML calls through pynvml in one Python
// process, and a whole `gpu-layers probe --json` process against an equivalent pynvml script.
// Results as JSON (--json FILE); scripts/bench/run-all.js renders them into BENCHMARKS.md. Needs
// the build (npm ci) and Debian's python3-pynvml (npm run fixtures).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { emitResults, machineFacts, median, percentile, python, root } from './machine.js';

const { openProbe } = await import(path.join(root, 'dist/index.js'));
const { mockLibraries, writeScenario } = await import(path.join(root, 'dist/mock.js'));

const DEVICES = 8;
const PROCESSES = 64;
const SAMPLES = 3000;
const PROCESS_RUNS = 30;
const pynvmlDir = path.join(root, '.cache/debian-nvidia/root/usr/lib/python3/dist-packages');
const pynvmlScript = path.join(root, 'scripts/oracles/pynvml_sample.py');
const cli = path.join(root, 'dist/cli/gpu-layers.cjs');

if (!existsSync(path.join(pynvmlDir, 'pynvml.py'))) {
  console.error('bench probe: pynvml is missing; run `npm run fixtures` first');
  process.exit(1);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
const scenarioFile = path.join(work, 'bench.scenario');
const GiB = 1024 ** 3;
writeScenario(scenarioFile, {
  driverVersion: '550.54.15',
  devices: Array.from({ length: DEVICES }, (_, d) => ({
    name: 'NVIDIA H100 80GB HBM3',
    uuid: `GPU-${String(d).padStart(8, '0')}-0000-4000-8000-000000000000`,
    pci: { domain: 0, bus: 0x18 + d * 0x10, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
    memory: { total: 85_520_809_984, reserved: 570_425_344, used: 40 * GiB, free: 85_520_809_984 - 570_425_344 - 40 * GiB },
    processes: Array.from({ length: PROCESSES }, (_, p) => ({ type: 'compute', pid: 100000 + d * 1000 + p, usedBytes: (p + 1) * 1024 ** 2 })),
  })),
});
const libraries = mockLibraries();
process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
const childEnv = {
  ...process.env,
  GPU_LAYERS_MOCK_SCENARIO: scenarioFile,
  GPU_LAYERS_NVML_LIB: libraries.nvml,
  GPU_LAYERS_CUDA_LIB: libraries.cuda,
  LD_LIBRARY_PATH: libraries.directory,
  PYTHONPATH: pynvmlDir,
  // Nothing from this machine's own gpu-layers use: an empty calibration cache, no stats folder.
  GPU_LAYERS_CACHE_DIR: work,
  GPU_LAYERS_STATS_DIR: '',
};

// 1. A warm sample, in-process, against the same calls made by pynvml in one Python process.
const probe = await openProbe({ nvmlLibrary: libraries.nvml, cudaLibrary: libraries.cuda });
for (let i = 0; i < 300; i++) await probe.sample();
const sampleMicros = [];
const nvmlMicros = [];
for (let i = 0; i < SAMPLES; i++) {
  const started = process.hrtime.bigint();
  const sample = await probe.sample();
  sampleMicros.push(Number(process.hrtime.bigint() - started) / 1000);
  nvmlMicros.push(sample.durationMs * 1000);
  if (sample.devices.length !== DEVICES || sample.devices[0].processes.length !== PROCESSES) throw new Error('bench: wrong sample');
}
await probe.close();

const pynvmlLoop = spawnSync(python, [pynvmlScript, 'loop', String(SAMPLES)], { env: childEnv, encoding: 'utf8' });
if (pynvmlLoop.status !== 0) throw new Error(`pynvml loop failed: ${pynvmlLoop.stderr}`);
const pynvmlMicros = JSON.parse(pynvmlLoop.stdout);

// 2. Whole processes. NODE_EXTRA_CA_CERTS makes Node 20 load a certificate bundle at every start,
// before any of gpu-layers runs; some sandboxes set it. The comparison runs without it (as on a
// GPU host), and the figure with it is kept beside when this environment sets it.
const { NODE_EXTRA_CA_CERTS: extraCaCerts, ...plainEnv } = childEnv;
// Round robin, so that a slower minute of this machine falls on every command alike.
function timeProcesses(commands) {
  const runs = commands.map(() => []);
  const bytes = commands.map(() => 0);
  for (let i = 0; i < PROCESS_RUNS + 3; i++) {
    commands.forEach(({ command, args, env = plainEnv }, c) => {
      const started = process.hrtime.bigint();
      const run = spawnSync(command, args, { env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      if (run.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${run.stderr}`);
      if (JSON.parse(run.stdout).devices.length !== DEVICES) throw new Error('bench: wrong output');
      bytes[c] = Buffer.byteLength(run.stdout);
      if (i >= 3) runs[c].push(ms);
    });
  }
  return { runs, bytes };
}
const timed = timeProcesses([
  { command: process.execPath, args: [cli, 'probe', '--json'] },
  { command: process.execPath, args: [path.join(root, 'dist/cli/cli-main.cjs'), 'probe', '--json'] },
  { command: python, args: [pynvmlScript, 'once'] },
  ...(extraCaCerts !== undefined ? [{ command: process.execPath, args: [cli, 'probe', '--json'], env: childEnv }] : []),
]);
const [cliMillis, bundleMillis, scriptMillis, cliWithCaMillis] = timed.runs;
const pynvmlVersion = (readFileSync(path.join(root, '.cache/debian-nvidia/versions.txt'), 'utf8').match(/^python3-pynvml (\S+)/m) ?? [])[1] ?? null;

emitResults({
  machine: machineFacts(),
  pynvmlVersion,
  devices: DEVICES,
  processesPerDevice: PROCESSES,
  samples: SAMPLES,
  processRuns: PROCESS_RUNS,
  mockNvmlMicrosMedian: median(nvmlMicros),
  sampleMicros: { median: median(sampleMicros), p90: percentile(sampleMicros, 0.9) },
  pynvmlMicros: { median: median(pynvmlMicros), p90: percentile(pynvmlMicros, 0.9) },
  cliProcessMs: median(cliMillis),
  cliWithoutCodeCacheMs: median(bundleMillis),
  cliWithExtraCaCertsMs: cliWithCaMillis === undefined ? null : median(cliWithCaMillis),
  pynvmlProcessMs: median(scriptMillis),
  cliOutputBytes: timed.bytes[0],
  pynvmlOutputBytes: timed.bytes[2],
});
