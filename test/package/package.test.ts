/**
 * The package as users get it: the exports map (ESM and CommonJS, the mock helpers, the JSON
 * Schema), no side effects on import, and a tarball installed into an empty project where
 * `npx gpu-layers demo` works.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { repoRoot, requireFile } from '../helpers/paths.js';

let consumer: string;

function node(args: string[], cwd = consumer): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync(process.execPath, args, { cwd, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

const PUBLIC_EXPORTS = [
  'GpuLayersError',
  'describeNvmlReturn',
  'isGpuLayersError',
  'openProbe',
  'openMonitor',
  'createExporter',
  'readLayers',
  'computeGaps',
  'calibrateContexts',
  'companionDirectory',
];
// The synchronous work over samples, and the zod schemas: entries of their own, so that the main
// one loads neither zod nor prom-client (lazy-entry.test.ts).
const ANALYSIS_EXPORTS = ['joinLayers', 'diagnose', 'parseRecording', 'RecordingWriter', 'FlightRecorder', 'renderReportHtml'];
const SCHEMA_EXPORTS = ['sampleSchema', 'layeredSampleSchema', 'findingSchema', 'FINDING_IDS'];

beforeAll(() => {
  requireFile(path.join(repoRoot, 'dist/index.js'), 'build the package (npm ci)');
  // A project that depends on the package, resolved through node_modules like an install.
  consumer = mkdtempSync(path.join(tmpdir(), 'gpu-layers-consumer-'));
  mkdirSync(path.join(consumer, 'node_modules'));
  symlinkSync(repoRoot, path.join(consumer, 'node_modules', 'gpu-layers'));
});
afterAll(() => rmSync(consumer, { recursive: true, force: true }));

describe('exports', () => {
  it('import: the public API, and nothing native loaded by the import itself', () => {
    const run = node([
      '--input-type=module',
      '-e',
      `import * as api from 'gpu-layers';
       import { readFileSync } from 'node:fs';
       const maps = readFileSync('/proc/self/maps', 'utf8');
       console.log(JSON.stringify({ names: Object.keys(api), addon: maps.includes('gpu_layers.node'), nvml: maps.includes('libnvidia-ml') }));`,
    ]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.names).toEqual(expect.arrayContaining(PUBLIC_EXPORTS));
    expect(result.addon).toBe(false);
    expect(result.nvml).toBe(false);
  });

  it('require: the same API from the CommonJS build', () => {
    const run = node(['-e', `const api = require('gpu-layers'); console.log(JSON.stringify(Object.keys(api)))`]);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual(expect.arrayContaining(PUBLIC_EXPORTS));
  });

  it('gpu-layers/analysis and gpu-layers/schemas, from both builds', () => {
    const script = (load: string): string => `${load}; console.log(JSON.stringify([Object.keys(analysis), Object.keys(schemas)]))`;
    const esm = node(['--input-type=module', '-e', script(`const analysis = await import('gpu-layers/analysis'); const schemas = await import('gpu-layers/schemas')`)]);
    const cjs = node(['-e', script(`const analysis = require('gpu-layers/analysis'); const schemas = require('gpu-layers/schemas')`)]);
    for (const run of [esm, cjs]) {
      expect(run.status, run.stderr).toBe(0);
      const [analysis, schemas] = JSON.parse(run.stdout);
      expect(analysis).toEqual(expect.arrayContaining(ANALYSIS_EXPORTS));
      expect(schemas).toEqual(expect.arrayContaining(SCHEMA_EXPORTS));
    }
  });

  it('gpu-layers/mock gives the built mock libraries and the scenario writer', () => {
    const run = node([
      '--input-type=module',
      '-e',
      `import { mockLibraries, formatScenario } from 'gpu-layers/mock';
       const libs = mockLibraries();
       console.log(JSON.stringify({ nvml: libs.nvml, text: formatScenario({ devices: [{}] }) }));`,
    ]);
    expect(run.status, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout);
    expect(result.nvml).toBe(path.join(repoRoot, 'build/Release/mock/libnvidia-ml.so.1'));
    expect(result.text).toBe('gpu-layers-mock-scenario 1\ndevice\n');
  });

  it('gpu-layers/schema/sample.json is the published JSON Schema', () => {
    const run = node(['-e', `console.log(require.resolve('gpu-layers/schema/sample.json'))`]);
    expect(run.status, run.stderr).toBe(0);
    const schema = JSON.parse(readFileSync(run.stdout.trim(), 'utf8'));
    expect(schema.properties.devices.type).toBe('array');
  });
});

describe('a tarball installed into an empty project', () => {
  it('builds the addon at install (--build-from-source) and runs `npx gpu-layers demo`', { timeout: 300_000 }, () => {
    const packDir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-pack-'));
    const project = mkdtempSync(path.join(tmpdir(), 'gpu-layers-install-'));
    try {
      const tarball = execFileSync('npm', ['pack', '--silent', '--ignore-scripts', '--pack-destination', packDir], { cwd: repoRoot, encoding: 'utf8' }).trim().split('\n').pop()!;
      writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
      // The source build, even where prebuilds/ was packed (install-without-compiler.test.ts tests those).
      execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', '--build-from-source', path.join(packDir, tarball)], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
      expect(existsSync(path.join(project, 'node_modules/gpu-layers/build/Release/gpu_layers.node'))).toBe(true);
      const demo = spawnSync('npx', ['--no-install', 'gpu-layers', 'demo'], { cwd: project, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      expect(demo.status, demo.stderr).toBe(0);
      expect(demo.stdout.match(/^GPU \d/gm)).toHaveLength(2);
      expect(demo.stdout).toMatch(/^CRITICAL allocator-fragmentation/m);
      expect(demo.stdout).toMatch(/^WARNING cuda-graph-creep/m);
      const live = spawnSync('npx', ['--no-install', 'gpu-layers', 'demo', '--live'], { cwd: project, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
      expect(live.status, live.stderr).toBe(0);
      expect(live.stdout.match(/^GPU \d/gm)).toHaveLength(8);
      // The companion ships in the package, where `gpu-layers companion --path` says it is.
      const companion = spawnSync('npx', ['--no-install', 'gpu-layers', 'companion', '--path'], { cwd: project, encoding: 'utf8' });
      expect(companion.status, companion.stderr).toBe(0);
      const companionDir = companion.stdout.trim();
      expect(companionDir.startsWith(path.join(project, 'node_modules', 'gpu-layers'))).toBe(true);
      expect(readFileSync(path.join(companionDir, 'sitecustomize.py'), 'utf8')).toContain('gpu_layers_companion');
      const files = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8' });
      const packed = (JSON.parse(files)[0].files as { path: string }[]).map((f) => f.path);
      expect(packed).toEqual(expect.arrayContaining(['binding.gyp', 'scripts/build/with-node-headers.sh', 'CMakeLists.txt', 'native/sources.json', 'native/glibc_compat.h', 'native/mock/mock_nvml.c', 'dist/cli/gpu-layers.cjs', 'dist/cli/cli-main.cjs', 'dist/cli/cli-main.v8cache', 'dist/index.cjs', 'dist/sample.schema.json', 'python/gpu_layers_companion/gpu_layers_companion.py', 'python/gpu_layers_companion/sitecustomize.py', 'assets/overnight.recording.jsonl.gz']));
      expect(packed.some((f) => f.startsWith('test/') || f.startsWith('build/') || f.includes('__pycache__'))).toBe(false);
      // The companion's wheel, for pip in images without Node: built with dist, shipped in it.
      expect(packed.some((f) => /^dist\/python\/gpu_layers_companion-[\d.]+-py3-none-any\.whl$/.test(f))).toBe(true);
    } finally {
      rmSync(packDir, { recursive: true, force: true });
      rmSync(project, { recursive: true, force: true });
    }
  });
});
