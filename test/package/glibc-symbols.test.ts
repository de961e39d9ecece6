/**
 * The native binaries load on old glibc and libstdc++ (RHEL 8, Ubuntu 20.04): scripts/build/check-glibc.sh
 * finds no symbol version above its limits in the node-gyp build, the cmake-js build (when built)
 * and the prebuilds (when present), and does fail on a binary that needs more.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { cmakeBuild, nodeGypBuild, repoRoot, requireFile } from '../helpers/paths.js';

const script = path.join(repoRoot, 'scripts/build/check-glibc.sh');

function check(files: string[]): { status: number | null; stdout: string; stderr: string } {
  const run = spawnSync('bash', [script, ...files], { encoding: 'utf8' });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/** `file: GLIBC_x GLIBCXX_y CXXABI_z  ok` → { GLIBC: 'x', ... } */
function newest(stdout: string, file: string): Record<string, string> {
  const line = stdout.split('\n').find((l) => l.startsWith(`${file}:`));
  expect(line, stdout).toBeDefined();
  return Object.fromEntries([...line!.matchAll(/\b(GLIBC|GLIBCXX|CXXABI)_([0-9.]+)/g)].map((m) => [m[1], m[2]]));
}

const prebuilds = path.join(repoRoot, 'prebuilds/linux-x64');
const builds = [nodeGypBuild, ...(existsSync(cmakeBuild.addon) ? [cmakeBuild] : [])];

describe('symbol versions of the native binaries', () => {
  for (const build of builds) {
    it(`${build.name}: at most GLIBC_2.17, GLIBCXX_3.4.22 and CXXABI_1.3.9`, () => {
      const files = [build.addon, build.mockNvml, build.mockCuda].map((f) => requireFile(f, 'build it (npm ci; npm run build:cmake)'));
      const run = check(files);
      expect(run.status, run.stdout + run.stderr).toBe(0);
      // One line per file, each family it needs named (the limits are the script's).
      expect(Object.keys(newest(run.stdout, build.addon)).sort()).toEqual(['CXXABI', 'GLIBC', 'GLIBCXX']);
      expect(Object.keys(newest(run.stdout, build.mockNvml))).toEqual(['GLIBC']);
      expect(Object.keys(newest(run.stdout, build.mockCuda))).toEqual(['GLIBC']);
    });
  }

  it.skipIf(!existsSync(prebuilds))('the prebuilds in prebuilds/linux-x64', () => {
    const run = check([path.join(prebuilds, 'gpu-layers.napi.glibc.node'), path.join(prebuilds, 'mock/libnvidia-ml.so.1'), path.join(prebuilds, 'mock/libcuda.so.1')]);
    expect(run.status, run.stdout + run.stderr).toBe(0);
  });

  it('fails on a binary that needs more: node itself (official builds need GLIBC_2.28)', () => {
    const run = check([process.execPath]);
    expect(run.status).toBe(1);
    expect(run.stdout).toMatch(/TOO NEW: GLIBC_2\.\d+ > GLIBC_2\.17/);
  });

  it('fails, rather than passing, on a file it cannot read', () => {
    const run = check([path.join(repoRoot, 'no-such-file.node')]);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('cannot read');
  });
});
