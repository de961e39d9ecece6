#!/usr/bin/env node
// Benchmark part "cold-load": what loading the library costs a fresh process, as a Node agent
// meets it (issue 18, item 7; target: under 60 ms for `require('gpu-layers')` and for `import
// { openProbe } from 'gpu-layers'`). Each figure is measured inside a new process (the runtime's
// own start is not counted), median of RUNS runs taken round robin, beside the same run's
// comparisons: zod and prom-client alone (what the entry used to load at once), and pynvml's
// `import pynvml` in CPython. Then the first sample: load, openProbe() and one sample() on the mock
// NVML, against pynvml's import, nvmlInit() and the same calls (scripts/oracles/pynvml_sample.py).
// Results as JSON (--json FILE); needs the build (npm ci) and python3-pynvml (npm run fixtures).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

import { emitResults, machineFacts, median, python, root } from './machine.js';

const RUNS = 25;
const WARMUP = 3;
const TARGET_MS = 60;
const pynvmlDir = path.join(root, '.cache/debian-nvidia/root/usr/lib/python3/dist-packages');

if (!existsSync(path.join(pynvmlDir, 'pynvml.py'))) {
  console.error('bench cold-load: pynvml is missing; run `npm run fixtures` first');
  process.exit(1);
}
const { mockLibraries, writeScenario } = await import(path.join(root, 'dist/mock.js'));

// A project that depends on gpu-layers, so that the bare specifiers resolve as after an install.
const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-cold-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));
mkdirSync(path.join(work, 'node_modules'));
symlinkSync(root, path.join(work, 'node_modules', 'gpu-layers'));
writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'cold-load', private: true }));
const scenarioFile = path.join(work, 'bench.scenario');
writeScenario(scenarioFile, {
  driverVersion: '550.54.15',
  devices: Array.from({ length: 2 }, (_, d) => ({
    uuid: `GPU-${String(d).padStart(8, '0')}-0000-4000-8000-000000000000`,
    processes: Array.from({ length: 4 }, (_, p) => ({ type: 'compute', pid: 100000 + d * 1000 + p, usedBytes: (p + 1) * 1024 ** 2 })),
  })),
});
const libraries = mockLibraries();
// NODE_EXTRA_CA_CERTS would make every Node start load a certificate bundle (probe.js says why).
const { NODE_EXTRA_CA_CERTS: _extraCaCerts, ...env } = process.env;
Object.assign(env, { GPU_LAYERS_MOCK_SCENARIO: scenarioFile, LD_LIBRARY_PATH: libraries.directory, PYTHONPATH: pynvmlDir });

// The dependencies as gpu-layers resolves them (the project above has them only through it).
const dependency = (name) => JSON.stringify(createRequire(path.join(root, 'package.json')).resolve(name));
const probeOptions = JSON.stringify({ nvmlLibrary: libraries.nvml, cudaLibrary: libraries.cuda });
const firstSampleTail = `const probe = await api.openProbe(${probeOptions}); const sample = await probe.sample(); await probe.close();
  if (sample.devices.length !== 2) throw new Error('wrong sample');`;

// Each command prints the milliseconds it measured inside its own process.
const commands = {
  requireEntry: [process.execPath, '-e', `const t = performance.now(); require('gpu-layers'); console.log(performance.now() - t);`],
  importEntry: [process.execPath, '--input-type=module', '-e', `const t = performance.now(); const { openProbe } = await import('gpu-layers'); console.log(performance.now() - t);`],
  requireZod: [process.execPath, '-e', `const t = performance.now(); require(${dependency('zod/mini')}); console.log(performance.now() - t);`],
  requirePromClient: [process.execPath, '-e', `const t = performance.now(); require(${dependency('prom-client')}); console.log(performance.now() - t);`],
  requireWholeLibrary: [
    process.execPath,
    '-e',
    `const t = performance.now(); require('gpu-layers'); require('gpu-layers/analysis'); require('gpu-layers/schemas'); require(${dependency('prom-client')}); console.log(performance.now() - t);`,
  ],
  importPynvml: [python, '-c', 'import time\nt = time.perf_counter()\nimport pynvml\nprint((time.perf_counter() - t) * 1000)'],
  requireFirstSample: [process.execPath, '-e', `(async () => { const t = performance.now(); const api = require('gpu-layers'); ${firstSampleTail} console.log(performance.now() - t); })();`],
  importFirstSample: [process.execPath, '--input-type=module', '-e', `const t = performance.now(); const api = await import('gpu-layers'); ${firstSampleTail} console.log(performance.now() - t);`],
  pynvmlFirstSample: [
    python,
    '-c',
    // pynvml_sample.py samples once when imported with `once` (nvmlInit, one pass printed as JSON, nvmlShutdown).
    `import contextlib, io, json, sys, time\nt = time.perf_counter()\nimport pynvml\nsys.path.insert(0, ${JSON.stringify(path.join(root, 'scripts/oracles'))})\nsys.argv = ['pynvml_sample.py', 'once']\nout = io.StringIO()\nwith contextlib.redirect_stdout(out):\n    import pynvml_sample\nassert len(json.loads(out.getvalue())["devices"]) == 2\nprint((time.perf_counter() - t) * 1000)`,
  ],
};

// Round robin, so that a slower minute of this machine falls on every command alike.
const runs = Object.fromEntries(Object.keys(commands).map((name) => [name, []]));
for (let i = 0; i < WARMUP + RUNS; i++) {
  for (const [name, [command, ...args]] of Object.entries(commands)) {
    const run = spawnSync(command, args, { cwd: work, env, encoding: 'utf8' });
    const ms = Number(run.stdout.trim());
    if (run.status !== 0 || !Number.isFinite(ms)) throw new Error(`bench cold-load: ${name} failed: ${run.stderr}`);
    if (i >= WARMUP) runs[name].push(ms);
  }
}
const medians = Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, median(values)]));

emitResults({
  machine: machineFacts(),
  runs: RUNS,
  targetMs: TARGET_MS,
  ...Object.fromEntries(Object.entries(medians).map(([name, ms]) => [`${name}Ms`, ms])),
});
const missed = medians.requireEntry >= TARGET_MS || medians.importEntry >= TARGET_MS;
for (const [name, ms] of Object.entries(medians)) console.error(`cold-load: ${name} ${ms.toFixed(1)} ms`);
if (missed) {
  console.error(`bench cold-load: the entry took ${medians.requireEntry.toFixed(1)} ms (require) / ${medians.importEntry.toFixed(1)} ms (import), target under ${TARGET_MS} ms`);
  process.exit(1);
}
