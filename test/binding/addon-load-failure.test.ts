/**
 * Every way the addon fails to load is named with its cause and its fix: Node started with
 * --no-addons, no build at all, musl, another architecture, a glibc or libstdc++ older than the
 * binary needs, a damaged file. The pure explanation over facts (with dlopen's real wording), and
 * the real loader on real bad files and a real `node --no-addons`.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, copyFileSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { binaryFolders, locateAddon, locateMockLibraries } from '../../src/binding/binary-location.js';
import { explainLoadFailure, readElfHeader, type LoadFailureFacts } from '../../src/binding/load-failure.js';
import { loadAddon } from '../../src/binding/addon.js';
import { cliPath, nodeGypBuild } from '../helpers/paths.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-load-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const base: LoadFailureFacts = { file: '/pkg/prebuilds/linux-x64/gpu-layers.napi.glibc.node', tried: [], error: null, platform: 'linux', arch: 'x64', glibc: '2.36' };
const dlopen = (message: string) => ({ code: 'ERR_DLOPEN_FAILED', message });

describe('explainLoadFailure', () => {
  it.each<[string, Partial<LoadFailureFacts>, RegExp, RegExp]>([
    ['--no-addons', { error: { code: 'ERR_DLOPEN_DISABLED', message: 'Cannot load native addon because loading addons is disabled.' } }, /--no-addons/, /NODE_OPTIONS/],
    ['no build at all', { file: null, tried: ['/pkg/build/Release/gpu_layers.node', '/pkg/prebuilds/linux-x64/x.node'] }, /no build at all: none of \/pkg\/build\/Release\/gpu_layers\.node/, /npm rebuild gpu-layers/],
    ['musl without a build', { file: null, glibc: null }, /musl \(Alpine\)/, /--build-from-source/],
    ['arm64 without a build', { file: null, arch: 'arm64' }, /linux-arm64 .*linux-x64 only/, /--build-from-source/],
    ['macOS', { file: null, platform: 'darwin', arch: 'arm64' }, /Linux addon; this is darwin-arm64/, /Linux GPU host/],
    ['another architecture', { error: dlopen('x.node: cannot open shared object file: No such file or directory'), elf: { bits: 64, arch: 'arm64' } }, /built for arm64 \(64-bit\), but this Node.js is linux-x64/, /on this machine/],
    ['a 32-bit file', { error: dlopen('x.node: wrong ELF class: ELFCLASS32'), elf: { bits: 32, arch: 'x64' } }, /built for x64 \(32-bit\)/, /--build-from-source/],
    ['an old glibc', { glibc: '2.17', elf: { bits: 64, arch: 'x64' }, error: dlopen("/lib64/libc.so.6: version `GLIBC_2.34' not found (required by x.node)") }, /needs glibc 2\.34 or newer; this system has glibc 2\.17/, /--build-from-source/],
    ['an old libstdc++', { elf: { bits: 64, arch: 'x64' }, error: dlopen("/lib64/libstdc++.so.6: version `GLIBCXX_3.4.30' not found (required by x.node)") }, /libstdc\+\+ with GLIBCXX_3\.4\.30/, /libstdc\+\+6/],
    ['a glibc build on musl', { glibc: null, elf: { bits: 64, arch: 'x64' }, error: dlopen('Error relocating x.node: __memcpy_chk: symbol not found') }, /built for glibc, but this system uses musl/, /glibc-based image/],
    ['a damaged file', { elf: null, error: dlopen('x.node: file too short') }, /not a shared library \(damaged or cut short\): x\.node: file too short/, /reinstall/],
    ['a named file that is not there', { error: { code: 'MODULE_NOT_FOUND', message: "Cannot find module 'x'" } }, /there is no file/, /GPU_LAYERS_ADDON/],
  ])('%s', (_, facts, cause, hint) => {
    const failure = explainLoadFailure({ ...base, ...facts });
    expect(failure.cause).toMatch(cause);
    expect(failure.hints.join(' | ')).toMatch(hint);
  });
});

describe('the loader on real files', () => {
  it('reads the architecture from the ELF header, where dlopen only says "No such file"', () => {
    const arm = path.join(work, 'arm64.node');
    copyFileSync(nodeGypBuild.addon, arm);
    // e_machine (offset 18) set to AArch64, the rest left as built.
    const fd = openSync(arm, 'r+');
    writeSync(fd, Buffer.from([0xb7, 0x00]), 0, 2, 18);
    closeSync(fd);
    expect(readElfHeader(arm)).toEqual({ bits: 64, arch: 'arm64' });
    expect(() => loadAddon(arm)).toThrow(expect.objectContaining({ code: 'NATIVE_ADDON_UNAVAILABLE', message: expect.stringMatching(/built for arm64 \(64-bit\), but this Node\.js is linux-x64/) }));
  });

  it('a text file named .node is not a shared library', () => {
    const text = path.join(work, 'text.node');
    writeFileSync(text, 'not a library\n');
    expect(() => loadAddon(text)).toThrow(expect.objectContaining({ message: expect.stringMatching(/is not a shared library/) }));
  });

  it('a package with no build at all says where it looked', () => {
    expect(locateAddon(work)).toBeNull();
    expect(locateMockLibraries(work)).toBeNull();
    expect(binaryFolders(work).map((f) => f.kind)).toEqual(['source build', 'prebuild']);
  });

  it('`node --no-addons gpu-layers probe` exits 3 naming the flag, not a dlopen riddle', () => {
    const run = spawnSync(process.execPath, ['--no-addons', cliPath, 'probe'], { encoding: 'utf8', timeout: 30_000 });
    expect(run.status).toBe(3);
    expect(run.stderr).toMatch(/NATIVE_ADDON_UNAVAILABLE/);
    expect(run.stderr).toMatch(/runs with --no-addons .* What to do: run gpu-layers without --no-addons/);
  });
});
