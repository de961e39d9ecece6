/**
 * The library's main entry stays light to load (issue 18, item 7): importing or requiring
 * `gpu-layers` loads neither zod nor prom-client; openProbe() loads what the probe needs (zod,
 * the addon) on its first call and reads the mock; prom-client stays unloaded until the exporter
 * is asked for. The entries share one copy of each module, so an error that gpu-layers/analysis
 * throws is a GpuLayersError to the main entry's isGpuLayersError. How many milliseconds that
 * saves is measured by scripts/bench/cold-load.js, not here.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { writeScenario } from '../../src/mock-host/scenario-text.js';
import { nodeGypBuild, repoRoot, requireFile } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

const scenario = host(2, 1, { driverVersion: '550.90.07' });
let consumer: string;
let env: Record<string, string | undefined>;

interface ChildReport {
  /** Package folders under node_modules the process had loaded at each mark. */
  loaded: Record<string, string[]>;
  figures: { driver: string | null; devices: { uuid: string | null; totalBytes: number | null; pids: number[] }[] };
  analysisErrorIsGpuLayersError: boolean;
}

/** node_modules package names (zod, prom-client) in a list of loaded module paths or URLs. */
const PACKAGES = `(files) => [...new Set(files.map((f) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(f)?.[1]).filter(Boolean))].sort()`;

/**
 * What both children do once `api` (the main entry) is loaded: note the packages loaded, open a
 * probe on the mock and sample it, note them again, then load gpu-layers/analysis (`loadAnalysis`)
 * and hand one of its errors to the main entry. `loaded()` lists the modules loaded so far;
 * `settle` lets the list catch up.
 */
function afterImport(loadAnalysis: string): string {
  return `
    const packages = ${PACKAGES};
    const report = { loaded: { imported: packages(loaded()) }, figures: null, analysisErrorIsGpuLayersError: false };
    const probe = await api.openProbe({ nvmlLibrary: process.env.MOCK_NVML, cudaLibrary: process.env.MOCK_CUDA, timeoutMs: 5000 });
    const sample = await probe.sample();
    await probe.close();
    await settle();
    report.loaded.probed = packages(loaded());
    report.figures = { driver: sample.driver.version, devices: sample.devices.map((d) => ({ uuid: d.uuid, totalBytes: d.memory.totalBytes, pids: (d.processes ?? []).map((p) => p.pid) })) };
    const analysis = ${loadAnalysis};
    try { analysis.parseRecording('not a recording', 'x.jsonl'); } catch (error) { report.analysisErrorIsGpuLayersError = api.isGpuLayersError(error); }
    console.log(JSON.stringify(report));
  `;
}

function runChild(args: string[]): ChildReport {
  const run = spawnSync(process.execPath, args, { cwd: consumer, env, encoding: 'utf8', timeout: 60_000 });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as ChildReport;
}

function expectMockFigures(report: ChildReport): void {
  expect(report.figures.driver).toBe(scenario.driverVersion);
  expect(report.figures.devices).toEqual(
    scenario.devices!.map((d) => ({ uuid: d.uuid, totalBytes: d.memory!.total, pids: (d.processes ?? []).map((p) => p.pid) })),
  );
}

beforeAll(() => {
  requireFile(path.join(repoRoot, 'dist/index.js'), 'build the package (npx tsup)');
  requireFile(nodeGypBuild.mockNvml, 'build the addon and the mock libraries (npx node-gyp build)');
  consumer = mkdtempSync(path.join(tmpdir(), 'gpu-layers-lazy-'));
  mkdirSync(path.join(consumer, 'node_modules'));
  symlinkSync(repoRoot, path.join(consumer, 'node_modules', 'gpu-layers'));
  writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'lazy-consumer', private: true }));
  const scenarioFile = path.join(consumer, 'mock.scenario');
  writeScenario(scenarioFile, scenario);
  // A load hook that tells the main thread every module the ES module loader loads.
  writeFileSync(
    path.join(consumer, 'hooks.mjs'),
    `let port;
     export function initialize(data) { port = data.port; }
     export async function load(url, context, next) { port.postMessage(url); return next(url, context); }`,
  );
  env = { ...process.env, GPU_LAYERS_MOCK_SCENARIO: scenarioFile, MOCK_NVML: nodeGypBuild.mockNvml, MOCK_CUDA: nodeGypBuild.mockCuda, NO_COLOR: '1' };
});
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

/** The entry loaded neither zod nor prom-client; openProbe() loaded zod alone; the figures are the mock's; errors are one class. */
function expectLoadedLazily(report: ChildReport): void {
  expect(report.loaded.imported).not.toContain('zod');
  expect(report.loaded.imported).not.toContain('prom-client');
  expect(report.loaded.probed).toContain('zod');
  expect(report.loaded.probed).not.toContain('prom-client');
  expectMockFigures(report);
  expect(report.analysisErrorIsGpuLayersError).toBe(true);
}

describe('the main entry loads its parts when they are used', () => {
  it('require: neither zod nor prom-client at require; zod, not prom-client, after openProbe', () => {
    const report = runChild([
      '-e',
      `(async () => {
         const loaded = () => Object.keys(require.cache);
         const settle = async () => {};
         const api = require('gpu-layers');
         ${afterImport("require('gpu-layers/analysis')")}
       })().catch((error) => { console.error(error); process.exit(1); });`,
    ]);
    expectLoadedLazily(report);
  });

  it('import: the same from the ES module build', () => {
    const hooks = pathToFileURL(path.join(consumer, 'hooks.mjs')).href;
    const report = runChild([
      '--input-type=module',
      '-e',
      `import { register } from 'node:module';
       import { MessageChannel } from 'node:worker_threads';
       const { port1, port2 } = new MessageChannel();
       const urls = [];
       port1.on('message', (url) => urls.push(url));
       port1.unref();
       register(${JSON.stringify(hooks)}, { data: { port: port2 }, transferList: [port2] });
       // The hooks thread posts each URL before the module loads; a turn of the event loop delivers them.
       const settle = () => new Promise((resolve) => setImmediate(resolve));
       const loaded = () => urls.slice();
       const api = await import('gpu-layers');
       await settle();
       ${afterImport("await import('gpu-layers/analysis')")}`,
    ]);
    expectLoadedLazily(report);
  });
});
