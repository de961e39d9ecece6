#!/usr/bin/env node
// Durability of `gpu-layers record` under SIGKILL (issue "hardening", part 5a):
// `node scripts/bench/durability-record.js [--kills 200] [--seed N] [--json FILE]`.
// Runs the built CLI's `record` on the mock NVML again and again into one recording, at the
// shortest interval (250 ms), killing each run with SIGKILL, and after every kill reads every file
// of the recording back with the package's reader (readRecording, dist/analysis.js).
//
// What a kill may cost, precisely: a sample is *taken* when NVML has answered its device count
// (the mock's trace, one file per run, records nvmlDeviceGetCount_v2 when it returns; gpu-layers
// calls it once at the start of every sample and nowhere else). Samples are taken one after the
// other, so at most one taken sample can be *in flight* at a kill: taken, and its line not yet
// completely written by its single write(2). Each run must therefore read back all its taken
// samples, or all but one (loss = taken - read back, 0 or 1); every sample read back after an
// earlier kill must still be there (except those the rotation deletes by design: the oldest, past
// --keep files); and every file must read back, with at most one warning, a torn last line, and
// only on the file being written (rotated files are always complete). "Every file" is every name
// `FILE*` matches, what a user hands to `gpu-layers diagnose`.
//
// Kill moments (seeded, reproducible: the seed is printed; --seed to replay):
// - half the runs: after a uniform random delay of 0 to --max-delay ms (default 1800) from spawn,
//   which covers startup (the first sample comes ~80 ms after spawn here), waits and samples;
// - the other half: aimed at the write path, which is a few ms in every 250: when the trace shows
//   the m-th sample taken (m = 1 to 4), after a further 0 to --aim-ms ms (default 6: on the
//   default host the layers, the JSON, the rotation and the write follow within ~4 ms).
// Each run picks --max-size: none (the file grows), under one line (rotation before every
// sample), 1.5 or 2.5 lines; --keep is fixed (default 10, more than one run's samples, so a run
// never deletes its own). Every run after the first continues the existing recording.
//
// Options: --kills N, --seed N, --max-delay MS, --aim-ms MS, --keep N, --devices N,
// --processes N, --dir DIR (default the system's temporary folder), --keep-dir (leave the
// recording and traces there), --cli FILE (another build of gpu-layers.cjs), --json FILE.
//
// --json FILE writes one flat object:
//   script, machineFacts() (date, cpu, node...), seed, kills, maxDelayMs, aimMs, keep, devices, processesPerDevice, lineBytes
//   uniformKills, aimedKills                  kills of each kind
//   killsDuringStartup                        runs killed before their first sample was taken
//   tornTails                                 kills that left a torn last line (the in-flight
//                                             sample's write cut short)
//   killsMidRotation                          kills that left a rotation unfinished (the current
//                                             file missing, a gap in the numbers, a new temporary)
//   samplesTaken, samplesReadBack             over all runs (read back: present after its run)
//   runsLosingOne, worstLoss                  runs that lost their in-flight sample; the most any
//                                             run lost (must be at most 1)
//   samplesDeletedByRotation                  gone because --keep was reached (by design)
//   filesAtEnd, samplesAtEnd                  the recording's files (FILE, FILE.N) and samples at the end
//   unreadableFiles                           readings of a file matching FILE* that the reader
//                                             refused, summed over the checks (must be 0)
//   strayFiles                                other files left in the folder: the writer's hidden
//                                             temporaries (.FILE.<pid>.tmp), empty or a header only
//   failures                                  broken expectations (must be 0; listed on stderr)
//   seconds, verdict                          "met" when failures is 0
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, watch, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { seededRandom } from '../hardening/seeded-random.js';
import { machineFacts, root } from './machine.js';

const { readRecording } = await import(path.join(root, 'dist/analysis.js'));
const { mockLibraries, writeScenario } = await import(path.join(root, 'dist/mock.js'));
// --cli: another build of the CLI (a deliberately broken writer shows that the checks fail).
const cliFlag = process.argv.indexOf('--cli');
const cli = cliFlag === -1 ? path.join(root, 'dist/cli/gpu-layers.cjs') : path.resolve(process.argv[cliFlag + 1]);

function flag(name, fallback) {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}
const KILLS = Number(flag('--kills', '200'));
const SEED = Number(flag('--seed', String(Math.floor(Math.random() * 2 ** 31))));
const MAX_DELAY_MS = Number(flag('--max-delay', '1800'));
const KEEP = Number(flag('--keep', '10'));
const DEVICES = Number(flag('--devices', '2'));
const PROCESSES = Number(flag('--processes', '2'));
const AIM_MS = Number(flag('--aim-ms', '6'));
const JSON_FILE = flag('--json', null);
const INTERVAL = '250ms'; // MIN_WATCH_INTERVAL_MS: the shortest record accepts
for (const [name, value] of [['--kills', KILLS], ['--seed', SEED], ['--max-delay', MAX_DELAY_MS], ['--keep', KEEP], ['--devices', DEVICES], ['--processes', PROCESSES], ['--aim-ms', AIM_MS]]) {
  if (!Number.isInteger(value) || value < (name === '--seed' ? 0 : 1)) {
    console.error(`durability-record: ${name} expects a whole number`);
    process.exit(2);
  }
}
console.log(`durability-record: ${KILLS} SIGKILLs of gpu-layers record --interval ${INTERVAL} --keep ${KEEP} on ${DEVICES} GPUs x ${PROCESSES} processes; seed ${SEED} (replay with --seed ${SEED})`);

const random = seededRandom(SEED);

const work = mkdtempSync(path.join(flag('--dir', os.tmpdir()), 'gpu-layers-durability-'));
const recordingDir = path.join(work, 'recording');
const traces = path.join(work, 'traces');
mkdirSync(recordingDir);
mkdirSync(traces);
const out = path.join(recordingDir, 'r.jsonl');
const base = path.basename(out);
const scenarioFile = path.join(work, 'host.scenario');
const MiB = 1024 ** 2;
// 2 GPUs x 2 processes by default: each line is ~9 KB, more than two pages, so a write can be
// cut short; 8 x 64 (--devices, --processes) makes the ~600 KB lines of a full host.
writeScenario(scenarioFile, {
  devices: Array.from({ length: DEVICES }, (_, d) => ({
    uuid: `GPU-durability-${d}`,
    memory: { total: 80 * 1024 * MiB, reserved: 512 * MiB, used: PROCESSES * 256 * MiB, free: 80 * 1024 * MiB - 512 * MiB - PROCESSES * 256 * MiB },
    processes: Array.from({ length: PROCESSES }, (_, p) => ({ type: 'compute', pid: 40_000 + d * 1000 + p, usedBytes: 256 * MiB })),
  })),
});
const libraries = mockLibraries();
const env = { ...process.env, GPU_LAYERS_MOCK_SCENARIO: scenarioFile, GPU_LAYERS_NVML_LIB: libraries.nvml, GPU_LAYERS_CUDA_LIB: libraries.cuda, GPU_LAYERS_STATS_DIR: '', GPU_LAYERS_CACHE_DIR: work };
const keepDir = process.argv.includes('--keep-dir');
process.on('exit', () => {
  if (keepDir) console.log(`kept ${work}`);
  else rmSync(work, { recursive: true, force: true });
});

// The size of one line, for --max-size: one sample recorded elsewhere.
const probeOut = path.join(work, 'line.jsonl');
await new Promise((resolve, reject) => {
  const child = spawn(process.execPath, [cli, 'record', '--out', probeOut, '--interval', INTERVAL, '--count', '1', '--no-host'], { env, stdio: 'ignore' });
  child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`record --count 1 exited ${code}`))));
});
const sampleLine = readFileSync(probeOut, 'utf8').split('\n')[1];
if (sampleLine === undefined || sampleLine === '') throw new Error('durability-record: record --count 1 wrote no sample');
const LINE_BYTES = Buffer.byteLength(sampleLine) + 1;
rmSync(probeOut);

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const takenIn = (trace) => (existsSync(trace) ? readFileSync(trace, 'utf8').split('\n').filter((l) => l.startsWith('nvmlDeviceGetCount_v2 ')).length : 0);

/**
 * The recording read back: its parts are FILE and FILE.N, and every other name that `FILE*`
 * matches would be handed to the reader by a user too, so each must read. Anything else in the
 * folder (the writer's hidden temporary, left by a kill between creating and renaming it) is a
 * stray: counted, not read.
 */
async function readBack() {
  const names = readdirSync(recordingDir);
  const isRotated = (n) => n.startsWith(`${base}.`) && /^\d+$/.test(n.slice(base.length + 1));
  const parts = names.filter((n) => n.startsWith(base));
  const rotated = parts.filter(isRotated).map((n) => Number(n.slice(base.length + 1)));
  const strays = names.filter((n) => !n.startsWith(base));
  const samples = new Set();
  const problems = [];
  let unreadable = 0;
  let torn = false;
  for (const name of parts) {
    if (name !== base && !isRotated(name)) problems.push(`${name} matches ${base}* but is not a part of the recording`);
    try {
      const recording = await readRecording(path.join(recordingDir, name));
      for (const sample of recording.samples) samples.add(sample.takenAt);
      for (const warning of recording.warnings) {
        if (name === base && /is incomplete \(the recorder stopped mid-write\)/.test(warning) && !torn) torn = true;
        else problems.push(`unexpected warning: ${warning}`);
      }
    } catch (error) {
      unreadable++;
      problems.push(`${name} does not read back: ${error.message}`);
    }
  }
  const gap = rotated.length !== Math.max(0, ...rotated);
  return { samples, problems, unreadable, torn, strays, files: parts.length, interrupted: (!names.includes(base) && rotated.length > 0) || gap };
}

const totals = { uniform: 0, aimed: 0, startup: 0, torn: 0, midRotation: 0, taken: 0, readBack: 0, losingOne: 0, worstLoss: 0, deleted: 0, strays: new Set(), unreadable: 0 };
const failures = [];
let previous = new Set();
const began = performance.now();

for (let k = 0; k < KILLS; k++) {
  const trace = path.join(traces, `run-${k}.log`);
  writeFileSync(trace, '');
  const sizeChoice = Math.floor(random() * 4);
  // (record refuses a --max-size under 4 KiB.)
  const maxSize = [null, Math.max(4096, Math.floor(LINE_BYTES * 0.6)), Math.floor(LINE_BYTES * 1.5), Math.floor(LINE_BYTES * 2.5)][sizeChoice];
  const aimed = random() < 0.5;
  const delay = Math.floor(random() * MAX_DELAY_MS);
  const nth = 1 + Math.floor(random() * 4);
  const jitterMs = random() * AIM_MS;
  const args = [cli, 'record', '--out', out, '--interval', INTERVAL, '--keep', String(KEEP), '--no-host', ...(maxSize === null ? [] : ['--max-size', String(maxSize)])];

  const spawnedAt = Date.now();
  const child = spawn(process.execPath, args, { env: { ...env, GPU_LAYERS_MOCK_TRACE: trace }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const closed = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  if (aimed) {
    totals.aimed++;
    // Wait for the nth sample to be taken (the trace grows by a line per NVML call), then a
    // little more, spinning rather than sleeping: timers are too coarse for a few ms.
    await new Promise((resolve) => {
      const watcher = watch(trace, () => {
        if (takenIn(trace) >= nth) finish();
      });
      const timer = setTimeout(finish, 2000 + nth * 250);
      void closed.then(finish);
      function finish() {
        watcher.close();
        clearTimeout(timer);
        resolve();
      }
    });
    const until = performance.now() + jitterMs;
    while (performance.now() < until);
  } else {
    totals.uniform++;
    await sleep(spawnedAt + delay - Date.now());
  }
  const killedAt = Date.now();
  child.kill('SIGKILL');
  const { signal } = await closed;
  if (signal !== 'SIGKILL') failures.push(`run ${k}: record ended by itself before the kill: ${stderr.trim()}`);

  const taken = takenIn(trace);
  const after = await readBack();
  const fresh = [...after.samples].filter((t) => !previous.has(t));
  const outside = fresh.filter((t) => Date.parse(t) < spawnedAt - 5 || Date.parse(t) > killedAt + 5);
  const gone = [...previous].filter((t) => !after.samples.has(t));
  const survivors = [...previous].filter((t) => after.samples.has(t));
  const loss = taken - fresh.length;
  if (outside.length > 0) failures.push(`run ${k}: ${outside.length} new sample(s) taken outside the run: ${outside[0]}`);
  if (loss < 0 || loss > 1) failures.push(`run ${k}: ${taken} sample(s) taken, ${fresh.length} read back (loss ${loss}; at most the in-flight one may be lost)`);
  // The rotation deletes the oldest file only: whatever disappeared must be older than anything kept.
  if (gone.length > 0 && survivors.length > 0 && gone.reduce((a, b) => (a > b ? a : b)) > survivors.reduce((a, b) => (a < b ? a : b))) {
    failures.push(`run ${k}: ${gone.length} earlier sample(s) disappeared that are not the oldest (${gone[0]})`);
  }
  for (const problem of after.problems) failures.push(`run ${k}: ${problem}`);
  totals.taken += taken;
  totals.readBack += fresh.length;
  totals.deleted += gone.length;
  totals.worstLoss = Math.max(totals.worstLoss, loss);
  if (loss === 1) totals.losingOne++;
  if (taken === 0) totals.startup++;
  if (after.torn) totals.torn++;
  // Left mid-rotation: the current file missing, a gap in the numbers, or a new temporary.
  if (after.interrupted || after.strays.some((name) => !totals.strays.has(name))) totals.midRotation++;
  for (const stray of after.strays) totals.strays.add(stray);
  totals.unreadable += after.unreadable;
  previous = after.samples;
  if ((k + 1) % 20 === 0 || k === KILLS - 1) {
    console.log(`  ${String(k + 1).padStart(4)} kills: ${totals.taken} samples taken, ${totals.readBack} read back, worst loss ${totals.worstLoss}, ${after.files} files, ${failures.length} failures`);
  }
}

const end = await readBack();
const result = {
  script: 'durability-record',
  ...machineFacts(),
  seed: SEED,
  kills: KILLS,
  maxDelayMs: MAX_DELAY_MS,
  aimMs: AIM_MS,
  keep: KEEP,
  devices: DEVICES,
  processesPerDevice: PROCESSES,
  lineBytes: LINE_BYTES,
  uniformKills: totals.uniform,
  aimedKills: totals.aimed,
  killsDuringStartup: totals.startup,
  tornTails: totals.torn,
  killsMidRotation: totals.midRotation,
  samplesTaken: totals.taken,
  samplesReadBack: totals.readBack,
  runsLosingOne: totals.losingOne,
  worstLoss: totals.worstLoss,
  samplesDeletedByRotation: totals.deleted,
  filesAtEnd: end.files,
  samplesAtEnd: end.samples.size,
  unreadableFiles: totals.unreadable,
  strayFiles: totals.strays.size,
  failures: failures.length,
  seconds: Number(((performance.now() - began) / 1000).toFixed(1)),
  verdict: failures.length === 0 ? 'met' : 'not met',
};
for (const failure of failures.slice(0, 20)) console.error(`  FAIL ${failure}`);
if (failures.length > 20) console.error(`  ... ${failures.length - 20} more`);
console.log(
  `${result.kills} kills (${result.uniformKills} at a random delay, ${result.aimedKills} aimed at the write; ${result.killsDuringStartup} during startup, ` +
    `${result.tornTails} left a torn last line, ${result.killsMidRotation} left a rotation unfinished)`,
);
console.log(
  `samples: ${result.samplesTaken} taken, ${result.samplesReadBack} read back; ${result.runsLosingOne} runs lost their in-flight sample, worst loss ${result.worstLoss}; ` +
    `${result.samplesDeletedByRotation} deleted by the rotation (--keep ${KEEP})`,
);
console.log(`files at the end: ${result.filesAtEnd} (${result.samplesAtEnd} samples); unreadable files: ${result.unreadableFiles}; stray files: ${result.strayFiles}${totals.strays.size > 0 ? ` (${[...totals.strays].slice(0, 3).join(', ')})` : ''}`);
console.log(`target: every file reads back, at most the in-flight sample lost per kill: ${result.verdict} (${result.seconds} s, seed ${SEED})`);
if (JSON_FILE !== null) {
  writeFileSync(JSON_FILE, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${JSON_FILE}`);
}
process.exit(failures.length === 0 ? 0 : 1);
