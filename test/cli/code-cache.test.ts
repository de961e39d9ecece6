/**
 * The CLI's V8 code cache (src/cli/launcher.ts): the build records one that this Node accepts for
 * this bundle, and a cache that does not fit (another bundle, damaged bytes) is ignored, never
 * run: the CLI then compiles as usual and answers the same.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Script } from 'node:vm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { repoRoot, requireFile } from '../helpers/paths.js';

const cliDir = path.join(repoRoot, 'dist/cli');
const bundleFile = path.join(cliDir, 'cli-main.cjs');
const cacheFile = path.join(cliDir, 'cli-main.v8cache');

let copy: string;

function runCopy(args: string[]) {
  const run = spawnSync(process.execPath, [path.join(copy, 'dist/cli/gpu-layers.cjs'), ...args], { encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' } });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

function splitCache(cache: Buffer): { header: string; data: Buffer } {
  const newline = cache.indexOf(0x0a);
  return { header: cache.subarray(0, newline).toString('utf8'), data: cache.subarray(newline + 1) };
}

beforeAll(() => {
  requireFile(cacheFile, 'build the package (npm ci runs the build and records the cache)');
  // A copy of the built CLI in a package of its own, to damage its cache without touching dist/.
  copy = mkdtempSync(path.join(tmpdir(), 'gpu-layers-code-cache-'));
  mkdirSync(path.join(copy, 'dist/cli'), { recursive: true });
  for (const name of ['gpu-layers.cjs', 'cli-main.cjs', 'cli-main.v8cache']) copyFileSync(path.join(cliDir, name), path.join(copy, 'dist/cli', name));
  copyFileSync(path.join(repoRoot, 'package.json'), path.join(copy, 'package.json'));
});
afterAll(() => rmSync(copy, { recursive: true, force: true }));

describe('the CLI code cache', () => {
  it('was recorded for this bundle and this Node, and V8 accepts it', () => {
    const bundle = readFileSync(bundleFile);
    const { header, data } = splitCache(readFileSync(cacheFile));
    const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');
    expect(header).toBe(`gpu-layers-v8-code-cache 1 ${sha256(bundle)} ${sha256(data)} ${process.version}`);
    // The same wrapper the launcher compiles.
    const text = bundle.toString('utf8').replace(/^#!.*/, '');
    const script = new Script(`(function (exports, require, module, __filename, __dirname) {${text}\n})`, { filename: bundleFile, cachedData: data });
    expect(script.cachedDataRejected).toBe(false);
  });

  it('a cache recorded for another bundle is ignored: the CLI answers as without one', () => {
    const expected = runCopy(['schema']);
    expect(expected.status, expected.stderr).toBe(0);
    const { header, data } = splitCache(readFileSync(cacheFile));
    const otherBundle = header.replace(/ [0-9a-f]{64} /, ` ${'0'.repeat(64)} `);
    expect(otherBundle).not.toBe(header);
    writeFileSync(path.join(copy, 'dist/cli/cli-main.v8cache'), Buffer.concat([Buffer.from(otherBundle + '\n'), data]));
    expect(runCopy(['schema'])).toEqual(expected);
  });

  it('damaged cache bytes are not fed to V8 (which would crash on them), and a missing cache is fine', () => {
    const expected = runCopy(['--help']);
    const damaged = Buffer.from(readFileSync(cacheFile));
    for (let i = damaged.length - 4096; i < damaged.length; i++) damaged[i] = damaged[i]! ^ 0xff;
    writeFileSync(path.join(copy, 'dist/cli/cli-main.v8cache'), damaged);
    expect(runCopy(['--help'])).toEqual(expected);
    rmSync(path.join(copy, 'dist/cli/cli-main.v8cache'));
    expect(runCopy(['--help'])).toEqual(expected);
    expect(expected.stdout).toContain('gpu-layers');
  });

  it('without the bundle: a plain message and exit 3', () => {
    rmSync(path.join(copy, 'dist/cli/cli-main.cjs'));
    const run = runCopy(['--help']);
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/^gpu-layers: the CLI is not built .*npm run build/);
    expect(run.stderr).not.toMatch(/\n\s+at /);
  });
});
