#!/usr/bin/env node
// Benchmark part "diagnosis-scale": `gpu-layers diagnose` on a fleet host's recording, against a
// bare streaming gunzip + JSON.parse of the same files in the same run. The recordings are drawn
// from the host model (src/mock-host/host-model.ts: 8 GPUs, one engine each, diurnal load, one
// engine creeping from half-way), every 5 s, written as gzip parts like a rotated recording:
// 3 days in 7 parts and 1 day in 3 (memory must not grow with the length). And the event loop
// while the library streams the 1-day recording (about 270 MiB of JSON) into the diagnosis's
// histories, and while readRecordings (every sample kept and checked against the schema, as
// `report` and `demo` read) reads the bundled demo recording and one part of that day: the
// longest block, from monitorEventLoopDelay. Results as JSON (--json FILE).
//   --hours-long N (default 72), --hours-short N (default 24)
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { createGzip } from 'node:zlib';

import { emitResults, flagValue, machineFacts, root } from './machine.js';

const longHours = Number(flagValue('--hours-long', 72));
const shortHours = Number(flagValue('--hours-short', 24));
const { modelRecording } = await import(path.join(root, 'dist/mock.js'));
const { streamRecording, HistoryBuilder, diagnoseHistories, readRecordings } = await import(path.join(root, 'dist/analysis.js'));
const cli = path.join(root, 'dist/cli/gpu-layers.cjs');
const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-scale-'));

/** A fleet host's recording, `hours` long, in `parts` gzip files; returns the files and the JSON bytes, in all and per part. */
async function write(name, hours, parts) {
  const engines = Array.from({ length: 8 }, (_, gpu) => ({
    name: `e${gpu}`,
    model: 'meta-llama/Llama-3.1-8B-Instruct',
    gpus: [gpu],
    weightsMiB: 15_320,
    kvMiB: 54_000,
    loadShare: 1 / 8,
    effects: gpu === 3 ? [{ kind: 'graph-creep', fromHour: hours / 2, mibPerHour: 60 }] : [],
  }));
  const recording = modelRecording({
    name,
    seed: 7,
    startMs: Date.UTC(2026, 10, 20),
    hours,
    intervalSeconds: 5,
    gpus: 8,
    gpuMiB: 81_559,
    traffic: { peakRequestsPerSecond: 8, nightShare: 0.1, meanServiceSeconds: 12, maxBatch: 64 },
    engines,
  });
  const per = Math.ceil(recording.samples.length / parts);
  const files = [];
  const partBytes = [];
  let bytes = 0;
  for (let p = 0; p < parts; p++) {
    const file = path.join(work, `${name}.${p}.jsonl.gz`);
    const gzip = createGzip();
    const out = createWriteStream(file);
    gzip.pipe(out);
    gzip.write(`${JSON.stringify({ ...recording.header, startedAt: recording.samples[p * per].takenAt })}\n`);
    for (const sample of recording.samples.slice(p * per, (p + 1) * per)) {
      const line = `${JSON.stringify(sample)}\n`;
      bytes += Buffer.byteLength(line);
      if (!gzip.write(line)) await once(gzip, 'drain');
    }
    gzip.end();
    await once(out, 'close');
    files.push(file);
    partBytes.push(bytes - partBytes.reduce((a, b) => a + b, 0));
  }
  return { files, samples: recording.samples.length, jsonBytes: bytes, partBytes };
}

// Peak RSS and wall time of a child, reported by the child itself at exit.
const reporter = path.join(work, 'report-usage.cjs');
writeFileSync(reporter, "process.on('exit', () => require('fs').writeFileSync(process.env.USAGE_FILE, JSON.stringify({ maxRssBytes: process.resourceUsage().maxRSS * 1024 })));\n");
const bare = path.join(work, 'bare.mjs');
writeFileSync(
  bare,
  "import { createReadStream } from 'node:fs'; import { createGunzip } from 'node:zlib'; import { createInterface } from 'node:readline';\n" +
    "let n = 0; for (const f of process.argv.slice(2)) { for await (const line of createInterface({ input: createReadStream(f).pipe(createGunzip()), crlfDelay: Infinity })) if (line !== '') { JSON.parse(line); n++; } }\n" +
    'console.log(n);\n',
);

function timed(args) {
  const usage = path.join(work, `usage-${Math.random().toString(36).slice(2)}.json`);
  const started = performance.now();
  const run = spawnSync(process.execPath, ['--require', reporter, ...args], { encoding: 'utf8', env: { ...process.env, USAGE_FILE: usage }, maxBuffer: 64 * 1024 * 1024 });
  const seconds = (performance.now() - started) / 1000;
  if (run.status !== 0) throw new Error(`${args.join(' ')} failed: ${run.stderr}`);
  return { seconds, ...JSON.parse(readUsage(usage)), stdout: run.stdout };
}
/**
 * The event loop's longest block while `work` runs. The timer that measures a block fires only
 * after it, so the histogram stays on for one more timer turn.
 */
async function loopWhile(work) {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const started = performance.now();
  const value = await work();
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 5));
  delay.disable();
  return { value, seconds, maxBlockMs: delay.max / 1e6, p99BlockMs: delay.percentile(99) / 1e6 };
}

function readUsage(file) {
  return spawnSync('cat', [file], { encoding: 'utf8' }).stdout;
}

const results = { machine: machineFacts() };
try {
  for (const [key, hours, parts] of [['long', longHours, 7], ['short', shortHours, 3]]) {
    console.log(`diagnosis-scale: writing ${hours} h of 8 GPUs at 5 s ...`);
    const recording = await write(key, hours, parts);
    const baseline = timed([bare, ...recording.files]);
    const ours = timed([cli, 'diagnose', '--json', ...recording.files]);
    const findings = JSON.parse(ours.stdout).findings.map((f) => `${f.id} GPU ${f.subject.deviceIndex}`);
    results[key] = { hours, parts, samples: recording.samples, jsonBytes: recording.jsonBytes, bare: { seconds: baseline.seconds, maxRssBytes: baseline.maxRssBytes }, diagnose: { seconds: ours.seconds, maxRssBytes: ours.maxRssBytes }, findings };
    console.log(`diagnosis-scale: ${hours} h: diagnose ${ours.seconds.toFixed(1)} s, ${(ours.maxRssBytes / 2 ** 20).toFixed(0)} MiB; bare ${baseline.seconds.toFixed(1)} s, ${(baseline.maxRssBytes / 2 ** 20).toFixed(0)} MiB; ${findings.join(', ')}`);
    if (key === 'short') {
      // The event loop while the library streams it into the diagnosis.
      const streamed = await loopWhile(async () => {
        const stream = await streamRecording(recording.files, () => {});
        const builder = new HistoryBuilder();
        for await (const { value } of stream.samples) builder.add(value);
        return builder;
      });
      const diagnosed = performance.now();
      diagnoseHistories(streamed.value.histories());
      results.eventLoop = { jsonBytes: recording.jsonBytes, readSeconds: streamed.seconds, maxBlockMs: streamed.maxBlockMs, p99BlockMs: streamed.p99BlockMs, diagnoseMs: performance.now() - diagnosed };
      console.log(`diagnosis-scale: event loop while streaming ${(recording.jsonBytes / 2 ** 20).toFixed(0)} MiB: longest block ${results.eventLoop.maxBlockMs.toFixed(1)} ms`);
      // And while readRecordings keeps every sample: the demo recording, then one part of the day.
      results.readRecordings = [];
      for (const [what, files, jsonBytes] of [
        ['the demo recording', [path.join(root, 'assets/overnight.recording.jsonl.gz')], null],
        ['one part of that day', recording.files.slice(0, 1), recording.partBytes[0]],
      ]) {
        const read = await loopWhile(() => readRecordings(files));
        results.readRecordings.push({ what, samples: read.value.samples.length, jsonBytes, seconds: read.seconds, maxBlockMs: read.maxBlockMs });
        console.log(`diagnosis-scale: readRecordings, ${what}: ${read.value.samples.length} samples in ${read.seconds.toFixed(1)} s, longest block ${read.maxBlockMs.toFixed(1)} ms`);
      }
    }
    for (const file of recording.files) rmSync(file, { force: true });
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
const l = results.long;
results.targets = {
  ratio: l.diagnose.seconds / l.bare.seconds,
  ratioMet: l.diagnose.seconds <= 1.5 * l.bare.seconds,
  rssMet: l.diagnose.maxRssBytes <= 300 * 2 ** 20,
  rssGrowthBytes: l.diagnose.maxRssBytes - results.short.diagnose.maxRssBytes,
  eventLoopMet: results.eventLoop.maxBlockMs <= 20 && results.readRecordings.every((r) => r.maxBlockMs <= 20),
};
emitResults(results);
process.exitCode = results.targets.ratioMet && results.targets.rssMet && results.targets.eventLoopMet ? 0 : 1;
