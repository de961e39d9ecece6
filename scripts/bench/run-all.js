#!/usr/bin/env node
// `npm run bench`: runs every benchmark part, one after the other (each in its own process, so no
// part's heap or JIT state colours the next), stores each part's results in
// docs/benchmarks/<part>.json and rewrites BENCHMARKS.md from them (render-report.js).
//   --only a,b   run these parts, keep the others' stored results
//   --quick      shorter soaks and fewer kills (the report shows the sizes used)
//   --render     run nothing, rewrite BENCHMARKS.md from the stored results
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { flagValue, machineFacts, root } from './machine.js';
import { PARTS, loadResults, renderReport } from './render-report.js';

const quick = process.argv.includes('--quick');
// Each part: its script, the node flags it needs, and the arguments of a full and a quick run.
const commands = {
  probe: { script: 'probe.js' },
  'cold-load': { script: 'cold-load.js' },
  companion: { script: 'companion.js' },
  snapshot: { script: 'snapshot.js', quick: ['--mb', '50'] },
  exporter: { script: 'exporter.js', node: ['--expose-gc'], quick: ['--seconds', '10'] },
  'exporter-abuse': { script: 'exporter-abuse.js', quick: ['--seconds', '8'] },
  'soak-probe': { script: 'soak-probe.js', quick: ['--samples', '20000', '--warmup', '5000'] },
  'soak-exporter': { script: 'soak-exporter.js', quick: ['--duration', '150s', '--warmup', '1m'] },
  durability: { script: 'durability-record.js', quick: ['--kills', '20'] },
  diagnosis: { script: 'diagnosis.js' },
  'diagnosis-scale': { script: 'diagnosis-scale.js', quick: ['--hours-long', '12', '--hours-short', '4'] },
};

const only = flagValue('--only', null);
const selected = process.argv.includes('--render') ? [] : only === null ? PARTS : only.split(',');
for (const part of selected) {
  if (!PARTS.includes(part)) {
    console.error(`bench: no part named "${part}"; the parts are ${PARTS.join(', ')}`);
    process.exit(2);
  }
}
if (!existsSync(path.join(root, 'dist/index.js')) || !existsSync(path.join(root, 'build/Release/gpu_layers.node'))) {
  console.error('bench: build first (npm ci)');
  process.exit(1);
}

const work = mkdtempSync(path.join(os.tmpdir(), 'gpu-layers-bench-all-'));
const failed = [];
for (const part of selected) {
  const { script, node = [], quick: quickArgs = [] } = commands[part];
  const out = path.join(work, `${part}.json`);
  const started = Date.now();
  console.log(`bench: ${part} ...`);
  const run = spawnSync(process.execPath, [...node, path.join(root, 'scripts/bench', script), '--json', out, ...(quick ? quickArgs : [])], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  // A part that wrote its results and exits 1 missed its target: the figures are still the
  // report's (it says which targets were missed). No results: the stored ones are kept.
  if (!existsSync(out)) {
    failed.push(part);
    console.error(`bench: ${part} failed (exit ${run.status ?? run.signal}); its stored results are kept`);
    continue;
  }
  const results = JSON.parse(readFileSync(out, 'utf8'));
  writeFileSync(path.join(root, 'docs/benchmarks', `${part}.json`), `${JSON.stringify({ machine: machineFacts(), ...results }, null, 2)}\n`);
  if (run.status !== 0) failed.push(part);
  console.log(`bench: ${part} done in ${((Date.now() - started) / 1000).toFixed(0)} s${run.status !== 0 ? ', target missed' : ''}`);
}
rmSync(work, { recursive: true, force: true });

const report = path.join(root, 'BENCHMARKS.md');
writeFileSync(report, renderReport(loadResults(root)));
console.log(`bench: wrote ${path.relative(process.cwd(), report) || report}`);
if (failed.length > 0) {
  console.error(`bench: parts that failed or missed a target: ${failed.join(', ')}`);
  process.exit(1);
}
