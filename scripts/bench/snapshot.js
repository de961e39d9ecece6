#!/usr/bin/env node
// Benchmark part "snapshot": `gpu-layers snapshot --json` against CPython on a generated PyTorch
// memory snapshot of about 300 MB (scripts/oracles/generate_snapshot.py, protocol 4 as torch writes it):
// CPython runs scripts/oracles/snapshot_figures.py, which is pickle.load plus the same figures in Python.
// Each side runs as a whole process, alternately, ROUNDS times on a warm page cache; wall time and
// peak RSS (GNU time's %M) per run, medians compared. Both must print the same figures. Results
// as JSON (--json FILE); --mb N changes the size.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { emitResults, flagValue, machineFacts, median, python, root } from './machine.js';

const cli = path.join(root, 'dist/cli/gpu-layers.cjs');
const TARGET_MB = Number(flagValue('--mb', 300));
const ROUNDS = 3;

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-snapshot-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const generated = spawnSync(python, [path.join(root, 'scripts/oracles/generate_snapshot.py'), work, '--protocols', '4', '--target-mb', String(TARGET_MB), '--name', 'big'], { encoding: 'utf8' });
if (generated.status !== 0) throw new Error(`generate_snapshot.py failed: ${generated.stderr}`);
const file = path.join(work, 'big.p4.pickle');
const size = statSync(file).size;
readFileSync(file); // warm the page cache for both sides

/** Runs a command under GNU time: wall seconds, peak RSS in bytes, and its stdout. */
function measure(command) {
  const run = spawnSync('/usr/bin/time', ['-f', '%e %M', ...command], { encoding: 'utf8', maxBuffer: 256 * 1024 * 1024 });
  if (run.status !== 0) throw new Error(`${command.join(' ')} failed: ${run.stderr}`);
  const [seconds, kilobytes] = run.stderr.trim().split('\n').pop().split(' ').map(Number);
  return { seconds, rssBytes: kilobytes * 1024, stdout: run.stdout };
}

const sides = {
  node: [process.execPath, cli, 'snapshot', '--json', file],
  cpython: [python, path.join(root, 'scripts/oracles/snapshot_figures.py'), file],
};
const runs = { node: [], cpython: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const side of round % 2 === 0 ? ['node', 'cpython'] : ['cpython', 'node']) runs[side].push(measure(sides[side]));
}
const nodeDevices = JSON.stringify(JSON.parse(runs.node[0].stdout).devices);
const pythonDevices = JSON.stringify(JSON.parse(runs.cpython[0].stdout).devices);
if (nodeDevices !== pythonDevices) throw new Error('gpu-layers and CPython disagree on the figures');

const devices = JSON.parse(runs.node[0].stdout).devices;
const summary = (side) => ({ seconds: median(runs[side].map((r) => r.seconds)), peakRssBytes: median(runs[side].map((r) => r.rssBytes)) });
emitResults({
  machine: machineFacts(),
  targetMb: TARGET_MB,
  fileBytes: size,
  protocol: 4,
  devices: devices.length,
  segments: devices.reduce((sum, d) => sum + d.segmentCount, 0),
  rounds: ROUNDS,
  gpuLayers: summary('node'),
  cpython: summary('cpython'),
});
