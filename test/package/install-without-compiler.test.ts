/**
 * The packed tarball installs on a GPU host that has Node and npm but no build tools: it carries
 * prebuilt linux-x64 binaries (scripts/build/prebuilds.js), node-gyp-build picks them at install, and
 * the CLI loads them. The tarball is staged like `npm pack` makes it (its prepack copies the
 * node-gyp build into prebuilds/), but from the build the other tests use, without rebuilding it
 * under them; it is installed with a PATH holding only node, npm, npx and sh.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { nodeGypBuild, repoRoot, requireFile } from '../helpers/paths.js';
import { packWithPrebuilds } from './packed-tarball.js';

const PREBUILT = ['prebuilds/linux-x64/gpu-layers.napi.glibc.node', 'prebuilds/linux-x64/mock/libnvidia-ml.so.1', 'prebuilds/linux-x64/mock/libcuda.so.1'];

let work: string;
let tarball: string;
let project: string;
let bin: string;
let bare: Record<string, string>;

/** A folder with node, npm, npx and sh, and nothing that could compile the addon. */
function bareBin(dir: string): string {
  mkdirSync(dir);
  const npm = realpathSync(execFileSync('sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).trim());
  const npx = realpathSync(execFileSync('sh', ['-c', 'command -v npx'], { encoding: 'utf8' }).trim());
  symlinkSync(process.execPath, path.join(dir, 'node'));
  symlinkSync(npm, path.join(dir, 'npm'));
  symlinkSync(npx, path.join(dir, 'npx'));
  symlinkSync('/bin/sh', path.join(dir, 'sh'));
  return dir;
}

function run(command: string, args: string[], cwd = project): { status: number | null; signal: string | null; stdout: string; stderr: string } {
  const result = spawnSync(path.join(bin, command), args, { cwd, env: bare, encoding: 'utf8', timeout: 90_000 });
  return { status: result.status, signal: result.signal, stdout: result.stdout, stderr: result.stderr };
}

beforeAll(() => {
  requireFile(path.join(repoRoot, 'dist/cli/gpu-layers.cjs'), 'build the package (npm ci)');
  requireFile(nodeGypBuild.addon, 'build the addon (npm ci)');
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-prebuilt-'));
  // Only what npm needs to find its cache; no npm_config_* (python, node-gyp), CC or PYTHON.
  bin = bareBin(path.join(work, 'bin'));
  bare = { PATH: bin, HOME: process.env.HOME ?? work, NO_COLOR: '1' };
  for (const name of ['TMPDIR', 'LANG', 'npm_config_cache', 'npm_config_registry']) {
    const value = process.env[name];
    if (value !== undefined) bare[name] = value;
  }

  tarball = packWithPrebuilds(work);

  project = path.join(work, 'project');
  mkdirSync(project);
  writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }));
}, 120_000);
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('a tarball with prebuilds, installed without build tools', () => {
  it('carries the prebuilt addon and mock libraries, and no build/ folder', () => {
    const listing = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n').map((f) => f.replace(/^package\//, ''));
    expect(listing).toEqual(expect.arrayContaining([...PREBUILT, 'binding.gyp', 'native/glibc_compat.h', 'dist/cli/gpu-layers.cjs']));
    expect(listing.some((f) => f.startsWith('build/'))).toBe(false);
    // Three binaries of well under a megabyte each; a static libstdc++ or a debug build would not be.
    expect(statSync(tarball).size).toBeLessThan(8 * 1024 * 1024);
  });

  it('the PATH it installs with has no compiler, make, python3 or cmake', () => {
    const tools = run('sh', ['-c', 'command -v python3 python make cc gcc c++ g++ cmake; true']);
    expect(tools.stdout).toBe('');
  });

  it('installs from the prebuilds: nothing compiled', { timeout: 120_000 }, () => {
    const install = run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error', tarball]);
    expect(install.status, install.stdout + install.stderr).toBe(0);
    const installed = path.join(project, 'node_modules/gpu-layers');
    expect(existsSync(path.join(installed, 'build'))).toBe(false);
    for (const file of PREBUILT) expect(existsSync(path.join(installed, file)), file).toBe(true);
  });

  it('`npx gpu-layers demo` prints the recorded night, and `demo --live` runs the prebuilt addon on the prebuilt mocks', () => {
    const demo = run('npx', ['--no-install', 'gpu-layers', 'demo']);
    expect(demo.status, demo.stderr).toBe(0);
    expect(demo.stdout.match(/^GPU \d/gm)).toHaveLength(2);
    expect(demo.stdout).toMatch(/^CRITICAL allocator-fragmentation/m);
    const live = run('npx', ['--no-install', 'gpu-layers', 'demo', '--live']);
    expect(live.status, live.stderr).toBe(0);
    expect(live.stdout.match(/^GPU \d/gm)).toHaveLength(8);
  });

  it('`npx gpu-layers probe` loads the addon and reports the missing driver in one line (exit 3)', () => {
    const probe = run('npx', ['--no-install', 'gpu-layers', 'probe']);
    if (existsSync('/proc/driver/nvidia/version')) {
      // A machine with a driver: the prebuilt addon reads it.
      expect(probe.status, probe.stderr).toBe(0);
      return;
    }
    expect(probe.signal).toBeNull();
    expect(probe.status, probe.stderr).toBe(3);
    expect(probe.stderr.trim().split('\n')).toHaveLength(1);
    expect(probe.stderr).toMatch(/NVML_LIBRARY_NOT_FOUND|DRIVER_NOT_LOADED/);
  });
});
