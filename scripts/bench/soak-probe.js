#!/usr/bin/env node
// Soak of the probe (issue "hardening", part 3a): `node scripts/bench/soak-probe.js [--json FILE]`.
// 200,000 samples (--samples N) through the real addon (openProbe() then probe.sample()) on the
// mock NVML, 8 GPUs x 64 processes, with every sample's figures and process set different from
// the one before: the scenario file is rewritten (temporary file + rename) before each sample, so
// the mock re-parses it at the sample's nvmlDeviceGetCount_v2. Each sample is checked against
// what was written for it (a mock that missed a rewrite would make the soak measure nothing).
// Memory (RSS, V8 heap used and total, V8's young generation, external) is read after a forced
// full GC at the start (after a warm-up of --warmup samples), at ten checkpoints and at the end.
// Target: growth from start to end under 2 MB (2,000,000 bytes) of RSS outside V8's young
// generation; the raw RSS growth is reported beside it.
//
// Why not raw RSS alone, and why this warm-up (measured here on 2026-11-26):
// - V8 grows its young generation by doubling, up to 16 MiB a semi-space, when enough objects
//   survive scavenges; on this workload the last doubling (+16 MiB heapTotal and RSS) came
//   anywhere from 5,000 to 50,000 samples in, once. The script therefore runs itself under node
//   --expose-gc --min-semi-space-size=16 --max-semi-space-size=16 (the young generation at its
//   full default size from the start) unless --no-pin; the JSON says which. Even so V8 keeps or
//   releases the young generation's pages on its own schedule, and after the forced full GC that
//   space holds nothing: its resident size (v8.getHeapSpaceStatistics(), physical size of the new
//   spaces) is subtracted for the verdict.
// - glibc's malloc arenas settle over the first ~100,000 to 150,000 samples (/proc/self/smaps:
//   the main arena from 4 to 8 MiB within 30,000, the probe worker's and libuv's from 1 to
//   ~4 MiB), a one-off 2 to 3 MiB: with a 2,000-sample warm-up two 200,000-sample runs grew
//   +2.61 and +2.09 MiB. Nothing allocated per sample stays allocated (heaptrack finds the same
//   2.6 MB unfreed at exit after 2,000, 12,000 and 100,000 samples), and from 100,000 to
//   1,000,000 samples RSS moved by -0.02 MiB. So the default warm-up is 100,000 samples.
// - Single readings scatter by about +-1 MiB (V8's page pool, the arenas); the least-squares
//   slope over the checkpoints is reported beside the start/end growth.
//
// Options: --samples N, --warmup N (default 100000), --no-pin, --fixed (diagnosis only: write
// the scenario once, so the mock never re-parses; separates the mock's parser from the addon),
// --dir DIR (where the scenario is written; default /dev/shm, a tmpfs, when it exists),
// --json FILE.
//
// --json FILE writes one flat object (every value a number, string or boolean):
//   script, then machineFacts() (date, cpu, cores, memoryGiB, kernel, node, python): what ran where
//   devices, processesPerDevice           the mock host (8, 64)
//   samples, warmupSamples                 samples measured after the warm-up, warm-up samples
//   fixedScenario                          true only with --fixed
//   youngGenerationPinned                  false only with --no-pin
//   staleSamples                           samples that did not show the figures written for
//                                          them (must be 0 for the soak to mean anything)
//   seconds, samplesPerSecond              wall time of the measured samples (CPU is shared:
//                                          indicative only)
//   rssStartBytes, rssEndBytes, rssGrowthBytes              after a forced GC
//   youngGenerationStartBytes, youngGenerationEndBytes      resident in V8's new spaces (empty)
//   rssOutsideYoungGenerationStartBytes, ...EndBytes, ...GrowthBytes   RSS minus that: the verdict's
//   heapUsedStartBytes, heapUsedEndBytes, heapUsedGrowthBytes
//   heapTotalStartBytes, heapTotalEndBytes                  V8's committed heap (its sizing)
//   externalStartBytes, externalEndBytes, externalGrowthBytes
//   rssMinBytes, rssMaxBytes               over the start, the checkpoints and the end
//   rssOutsideYoungGenerationSlopeBytesPer100kSamples       least-squares slope over the checkpoints
//   targetRssGrowthBytes                   2000000
//   verdict                                "met" or "not met" (growth of RSS outside the young
//                                          generation under the target, and no stale sample)
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import v8 from 'node:v8';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { machineFacts, memoryGrowthFields, root } from './machine.js';

// Run again under the V8 flags the measurement needs (see above), passing the arguments on.
const PIN = !process.argv.includes('--no-pin');
const v8Flags = ['--expose-gc', ...(PIN ? ['--min-semi-space-size=16', '--max-semi-space-size=16'] : [])];
if (!v8Flags.every((f) => process.execArgv.includes(f))) {
  const child = spawnSync(process.execPath, [...v8Flags, fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  process.exit(child.status ?? 1);
}

const { openProbe } = await import(path.join(root, 'dist/index.js'));
const { mockLibraries, formatScenario } = await import(path.join(root, 'dist/mock.js'));

function flag(name, fallback) {
  const at = process.argv.indexOf(name);
  return at === -1 ? fallback : process.argv[at + 1];
}
const SAMPLES = Number(flag('--samples', '200000'));
const WARMUP = Number(flag('--warmup', '100000'));
const FIXED = process.argv.includes('--fixed');
const JSON_FILE = flag('--json', null);
const DEVICES = 8;
const PROCESSES = 64;
const CHECKPOINTS = 10;
const TARGET_BYTES = 2_000_000;
const MiB = 1024 ** 2;
const TOTAL = 85_520_809_984;
const RESERVED = 570_425_344;
// Pids above this host's usual pid_max (32768) and at most PID_MAX_LIMIT (2^22, the addon drops
// rows past it as implausible); 500,000 slots per device, used in turn.
const PID_BASE = 40_000;
const PID_SLOTS = 500_000;

if (!Number.isInteger(SAMPLES) || SAMPLES < CHECKPOINTS || !Number.isInteger(WARMUP) || WARMUP < 0) {
  console.error('soak-probe: --samples must be a whole number of at least 10, --warmup a whole number');
  process.exit(2);
}

const parent = flag('--dir', existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir());
const work = mkdtempSync(path.join(parent, 'gpu-layers-soak-probe-'));
const scenarioFile = path.join(work, 'host.scenario');
const temporary = path.join(work, '.host.scenario.tmp');
process.on('exit', () => rmSync(work, { recursive: true, force: true }));

// Sample i: on device d, the 64 processes are pids PID_BASE + ((i + p) % PID_SLOTS) * 8 + d
// (p = 0..63), so from one sample to the next one process exits and a new one (a pid not seen in
// the last 500,000 samples) starts on every device; every process's bytes, the device's used and
// free bytes, BAR1 and utilization change too. `expected` keeps what the check below needs.
const pidOf = (i, p, d) => PID_BASE + ((i + p) % PID_SLOTS) * 8 + d;
const expected = Array.from({ length: DEVICES }, () => ({ used: 0, pidSum: 0 }));
let lastSize = -1;

/** The scenario text of sample i, in the line format of native/mock/README.md. */
function scenarioText(i) {
  const lines = ['gpu-layers-mock-scenario 1', `# soak sample ${i}`, 'driver_version 550.54.15', 'nvml_version 12.550.54.15', 'cuda_driver_version 12040'];
  for (let d = 0; d < DEVICES; d++) {
    const processLines = [];
    let used = 0;
    let pidSum = 0;
    for (let p = 0; p < PROCESSES; p++) {
      const bytes = (p + 1) * MiB + ((i * 7 + p) % 512) * 4096;
      used += bytes;
      pidSum += pidOf(i, p, d);
      processLines.push(`process compute ${pidOf(i, p, d)} ${bytes}`);
    }
    expected[d].used = used;
    expected[d].pidSum = pidSum;
    lines.push(
      'device',
      'name NVIDIA H100 80GB HBM3',
      `uuid GPU-${String(d).padStart(8, '0')}-0000-4000-8000-000000000000`,
      `pci 0 ${0x18 + d * 0x10} 0 0x233010de 0x16c110de`,
      `memory ${TOTAL} ${RESERVED} ${used} ${TOTAL - RESERVED - used}`,
      `bar1 ${128 * 1024 * MiB} ${(i % 1000) * MiB} ${128 * 1024 * MiB - (i % 1000) * MiB}`,
      `utilization ${(i + d) % 101} ${(i * 3 + d) % 101}`,
      ...processLines,
    );
  }
  let text = `${lines.join('\n')}\n`;
  // The mock re-reads the file when its inode, size or mtime changed. The rename gives a new
  // inode, but a freed inode number can come back and mtime is as coarse as the kernel's tick:
  // a different size from the previous file makes the change certain.
  if (Buffer.byteLength(text) === lastSize) text += '#\n';
  lastSize = Buffer.byteLength(text);
  return text;
}

function writeSample(i) {
  writeFileSync(temporary, scenarioText(i));
  renameSync(temporary, scenarioFile);
}

// The template above must be what the package's own writer produces for the same host.
{
  const text = scenarioText(0).split('\n').filter((l) => !l.startsWith('#')).join('\n');
  const official = formatScenario({
    driverVersion: '550.54.15',
    nvmlVersion: '12.550.54.15',
    cudaDriverVersion: 12040,
    devices: Array.from({ length: DEVICES }, (_, d) => ({
      name: 'NVIDIA H100 80GB HBM3',
      uuid: `GPU-${String(d).padStart(8, '0')}-0000-4000-8000-000000000000`,
      pci: { domain: 0, bus: 0x18 + d * 0x10, device: 0, pciDeviceId: 0x233010de, pciSubSystemId: 0x16c110de },
      memory: { total: TOTAL, reserved: RESERVED, used: expected[d].used, free: TOTAL - RESERVED - expected[d].used },
      bar1: { total: 128 * 1024 * MiB, used: 0, free: 128 * 1024 * MiB },
      utilization: { gpu: d % 101, memory: d % 101 },
      processes: Array.from({ length: PROCESSES }, (_, p) => ({ type: 'compute', pid: pidOf(0, p, d), usedBytes: (p + 1) * MiB + (p % 512) * 4096 })),
    })),
  });
  if (text !== official) throw new Error('soak-probe: the scenario template differs from formatScenario()');
}

let stale = 0;
/** Whether sample i shows the figures written for it. */
function check(sample) {
  if (sample.devices.length !== DEVICES) return false;
  for (let d = 0; d < DEVICES; d++) {
    const device = sample.devices[d];
    const e = expected[d];
    if (device.memory.usedBytes !== e.used || device.processes === null || device.processes.length !== PROCESSES) return false;
    let pidSum = 0;
    let bytes = 0;
    for (const p of device.processes) {
      pidSum += p.pid;
      bytes += p.usedBytes;
    }
    if (pidSum !== e.pidSum || bytes !== e.used) return false;
  }
  return true;
}

function memory() {
  globalThis.gc();
  globalThis.gc();
  const { rss, heapTotal, heapUsed, external } = process.memoryUsage();
  const young = v8.getHeapSpaceStatistics().filter((space) => space.space_name.startsWith('new_')).reduce((sum, space) => sum + space.physical_space_size, 0);
  return { rss, heapTotal, heapUsed, external, young, settled: rss - young };
}

const libraries = mockLibraries();
process.env.GPU_LAYERS_MOCK_SCENARIO = scenarioFile;
delete process.env.GPU_LAYERS_MOCK_TRACE;
writeSample(0);
const probe = await openProbe({ nvmlLibrary: libraries.nvml, cudaLibrary: libraries.cuda });

let i = 0;
async function run(count) {
  for (const end = i + count; i < end; i++) {
    if (!FIXED) writeSample(i);
    const sample = await probe.sample();
    if (!FIXED && !check(sample)) stale++;
  }
}

if (FIXED) writeSample(0);
await run(WARMUP);
const start = memory();
const checkpoints = [{ at: 0, ...start }];
const started = performance.now();
const fmt = (bytes) => `${(bytes / MiB).toFixed(2)} MiB`;
console.log(`soak-probe: ${SAMPLES} samples of ${DEVICES} GPUs x ${PROCESSES} processes${FIXED ? ' (fixed scenario)' : ', figures and process set changing every sample'}, after ${WARMUP} warm-up samples; node ${v8Flags.join(' ')}`);
const line = (m) => `rss ${fmt(m.rss)} (young generation ${fmt(m.young)}, the rest ${fmt(m.settled)}), heap used ${fmt(m.heapUsed)} of ${fmt(m.heapTotal)}, external ${fmt(m.external)}`;
console.log(`  start: ${line(start)}`);
for (let c = 1; c <= CHECKPOINTS; c++) {
  await run(Math.round((SAMPLES * c) / CHECKPOINTS) - Math.round((SAMPLES * (c - 1)) / CHECKPOINTS));
  const m = memory();
  checkpoints.push({ at: i - WARMUP, ...m });
  console.log(`  ${String(i - WARMUP).padStart(8)} samples: ${line(m)}, ${((i - WARMUP) / ((performance.now() - started) / 1000)).toFixed(0)} samples/s`);
}
const seconds = (performance.now() - started) / 1000;
await probe.close();
const end = checkpoints[checkpoints.length - 1];

// Least-squares slope against samples over the checkpoints (RSS outside the young generation): a
// leak grows linearly, the allocator's one-off settling does not.
const xs = checkpoints.map((c) => c.at);
const ys = checkpoints.map((c) => c.settled);
const mean = (v) => v.reduce((a, b) => a + b, 0) / v.length;
const mx = mean(xs);
const my = mean(ys);
const slope = xs.reduce((s, x, k) => s + (x - mx) * (ys[k] - my), 0) / xs.reduce((s, x) => s + (x - mx) ** 2, 0);

const rssGrowth = end.rss - start.rss;
const settledGrowth = end.settled - start.settled;
const met = settledGrowth < TARGET_BYTES && stale === 0;
const result = {
  script: 'soak-probe',
  ...machineFacts(),
  devices: DEVICES,
  processesPerDevice: PROCESSES,
  samples: SAMPLES,
  warmupSamples: WARMUP,
  fixedScenario: FIXED,
  youngGenerationPinned: PIN,
  staleSamples: stale,
  seconds: Number(seconds.toFixed(1)),
  samplesPerSecond: Math.round(SAMPLES / seconds),
  ...memoryGrowthFields(start, end),
  rssMinBytes: Math.min(...checkpoints.map((c) => c.rss)),
  rssMaxBytes: Math.max(...checkpoints.map((c) => c.rss)),
  rssOutsideYoungGenerationSlopeBytesPer100kSamples: Math.round(slope * 100_000),
  targetRssGrowthBytes: TARGET_BYTES,
  verdict: met ? 'met' : 'not met',
};
const signed = (bytes) => `${bytes >= 0 ? '+' : '-'}${fmt(Math.abs(bytes))} (${bytes} bytes)`;
console.log(`  end:   ${line(end)}`);
console.log(`growth: rss ${signed(rssGrowth)}, outside the young generation ${signed(settledGrowth)}, heap used ${signed(result.heapUsedGrowthBytes)}, external ${signed(result.externalGrowthBytes)}`);
console.log(`rss range over the checkpoints ${fmt(result.rssMinBytes)} .. ${fmt(result.rssMaxBytes)}; outside the young generation, slope ${result.rssOutsideYoungGenerationSlopeBytesPer100kSamples} bytes per 100k samples`);
console.log(`${SAMPLES} samples in ${result.seconds} s: ${result.samplesPerSecond} samples/s (shared CPU: indicative); stale samples: ${stale}`);
console.log(`target: RSS growth (outside V8's young generation, empty after the forced GC) under ${TARGET_BYTES} bytes${FIXED ? '' : ' and no stale sample'}: ${result.verdict}`);
if (JSON_FILE !== null) {
  writeFileSync(JSON_FILE, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`wrote ${JSON_FILE}`);
}
process.exit(met ? 0 : 1);
