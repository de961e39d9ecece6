#!/usr/bin/env node
// `npm run bench:snapshot` (and part of `npm run bench`): `gpu-layers snapshot --json` against
// CPython on a generated PyTorch memory snapshot of about 300 MB (scripts/generate_snapshot.py,
// protocol 4 as torch writes it): CPython runs scripts/snapshot_figures.py, which is pickle.load
// plus the same figures in Python. Each side runs as a whole process, alternately, ROUNDS times
// on a warm page cache; wall time and peak RSS (GNU time's %M) are measured per run and the
// medians compared. Both must print the same figures. Rewrites the bench:snapshot section of
// BENCHMARKS.md (--no-write: print only); --mb N changes the size.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { writeBenchmarkSections } from './benchmark-sections.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
const cli = path.join(root, 'dist/cli/gpu-layers.cjs');
const mbFlag = process.argv.indexOf('--mb');
const TARGET_MB = mbFlag === -1 ? 300 : Number(process.argv[mbFlag + 1]);
const ROUNDS = 3;

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-snapshot-'));
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

const generated = spawnSync(python, [path.join(root, 'scripts/generate_snapshot.py'), work, '--protocols', '4', '--target-mb', String(TARGET_MB), '--name', 'big'], { encoding: 'utf8' });
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
  cpython: [python, path.join(root, 'scripts/snapshot_figures.py'), file],
};
const runs = { node: [], cpython: [] };
for (let round = 0; round < ROUNDS; round++) {
  for (const side of round % 2 === 0 ? ['node', 'cpython'] : ['cpython', 'node']) runs[side].push(measure(sides[side]));
}
const nodeDevices = JSON.stringify(JSON.parse(runs.node[0].stdout).devices);
const pythonDevices = JSON.stringify(JSON.parse(runs.cpython[0].stdout).devices);
if (nodeDevices !== pythonDevices) throw new Error('gpu-layers and CPython disagree on the figures');

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const mb = (bytes) => `${(bytes / 1e6).toFixed(0)} MB`;
const node = { seconds: median(runs.node.map((r) => r.seconds)), rss: median(runs.node.map((r) => r.rssBytes)) };
const cpython = { seconds: median(runs.cpython.map((r) => r.seconds)), rss: median(runs.cpython.map((r) => r.rssBytes)) };
const speed = cpython.seconds / node.seconds;
const devices = JSON.parse(runs.node[0].stdout).devices;
const blocks = devices.reduce((sum, d) => sum + d.segmentCount, 0);
const pythonVersion = spawnSync(python, ['--version'], { encoding: 'utf8' }).stdout.trim();
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
const today = new Date().toISOString().slice(0, 10);

const section = `<!-- bench:snapshot:start -->
## Snapshot forensics: \`gpu-layers snapshot --json\` against CPython

${today}, ${os.cpus().length} x ${cpu}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node.js ${process.version}, ${pythonVersion}.
A generated snapshot (\`scripts/generate_snapshot.py --target-mb ${TARGET_MB}\`, protocol 4 as
\`torch.cuda.memory._dump_snapshot\` writes it on CPython 3.8-3.13) of ${mb(size)}: ${devices.length} devices,
${blocks} segments. CPython runs \`scripts/snapshot_figures.py\` (\`pickle.load\`, the C unpickler,
then the same figures in Python); both print identical figures. Whole processes, alternately,
${ROUNDS} rounds on a warm page cache; medians; peak RSS from GNU time.

| | wall time | peak RSS | peak RSS / file size |
| --- | --- | --- | --- |
| \`gpu-layers snapshot --json\` | ${node.seconds.toFixed(2)} s | ${mb(node.rss)} | ${(node.rss / size).toFixed(2)} |
| CPython \`pickle.load\` + figures | ${cpython.seconds.toFixed(2)} s | ${mb(cpython.rss)} | ${(cpython.rss / size).toFixed(2)} |
| ratio | ${speed >= 1 ? `gpu-layers ${speed.toFixed(2)}x faster` : `gpu-layers ${(1 / speed).toFixed(2)}x slower`} | ${(node.rss / cpython.rss).toFixed(2)}x CPython's | |

Targets (issue 6): at least as fast as CPython end to end, peak RSS under 2x the file size.
gpu-layers reads the file twice in 4 MiB pieces (the first pass finds which memo entries are
fetched again; the second builds values, hands each segment to the analysis and drops it), so it
never holds the whole object tree that \`pickle.load\` builds.
<!-- bench:snapshot:end -->`;

console.log(section);
if (!process.argv.includes('--no-write')) writeBenchmarkSections(root, { snapshot: section });
