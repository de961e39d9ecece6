/**
 * The programs the tests drive come from .cache/debian-tools, fetched without root or a system
 * install (scripts/fixtures/fetch-test-tools.sh): each launcher runs the unpacked copy, which
 * reports the version of the Debian package the fetch unpacked; valgrind can start a program
 * (it needs ld.so's symbols, from libc6-dbg, which may be fetched rather than installed); the apt
 * source files are read for the release's own suites only; and the fetch refuses bad arguments
 * before it touches the network.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { repoRoot } from '../helpers/paths.js';
import { fetchedPackageVersions, TEST_TOOL_PACKAGES, testTool, testToolsDir, type TestToolName } from '../helpers/test-tools.js';

/** The upstream version inside a Debian version: no epoch, no Debian revision, no +ds or +really prefix. */
function upstreamVersion(debianVersion: string): string {
  const noEpoch = debianVersion.replace(/^\d+:/, '');
  const noRevision = noEpoch.includes('-') ? noEpoch.slice(0, noEpoch.lastIndexOf('-')) : noEpoch;
  const really = noRevision.split('+really').at(-1)!;
  return really.replace(/\+.*$/, '');
}

const VERSION_ARGS: Record<TestToolName, string[]> = {
  promtool: ['--version'],
  prometheus: ['--version'],
  chromium: ['--version'],
  valgrind: ['--version'],
  kubectl: ['version', '--client'],
};

describe('the fetched test tools', () => {
  const versions = fetchedPackageVersions();

  it.each(Object.keys(VERSION_ARGS) as TestToolName[])('%s runs from .cache and is the version the fetch unpacked', (name) => {
    const launcher = testTool(name);
    expect(path.dirname(launcher)).toBe(path.join(testToolsDir, 'bin'));
    const packaged = versions.get(TEST_TOOL_PACKAGES[name]);
    expect(packaged, `${TEST_TOOL_PACKAGES[name]} in versions.txt`).toBeDefined();
    const r = spawnSync(launcher, VERSION_ARGS[name], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, HOME: tmpdir() } });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`).toContain(upstreamVersion(packaged!));
  });

  it('valgrind starts a program: it finds the symbols of ld.so it must redirect', () => {
    const r = spawnSync(testTool('valgrind'), ['-q', '--error-exitcode=9', '/bin/true'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toContain('Fatal error at startup');
    expect(r.status, r.stderr).toBe(0);
  });

  it('reads a Debian version as its upstream version', () => {
    expect(upstreamVersion('1:3.19.0-1')).toBe('3.19.0');
    expect(upstreamVersion('2.42.0+ds-5+deb12u1')).toBe('2.42.0');
    expect(upstreamVersion('1.20.5+really1.20.2-1.1+deb12u1')).toBe('1.20.2');
    expect(upstreamVersion('156.0.8078.129-1~deb12u1')).toBe('156.0.8078.129');
  });
});

describe('debian-archive-suites.sh', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-apt-sources-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const script = path.join(repoRoot, 'scripts/fixtures/debian-archive-suites.sh');
  const suites = (...files: string[]): string[] => {
    const r = spawnSync('bash', [script, 'bookworm', ...files], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    return r.stdout.split('\n').filter((line) => line !== '');
  };

  it('takes the release and its companion suites from deb822 files, not a third party, deb-src or a disabled entry', () => {
    const file = path.join(dir, 'debian.sources');
    writeFileSync(
      file,
      [
        'Types: deb',
        '# a comment: Suites: sid',
        'URIs: http://mirror.example/debian',
        'Suites: bookworm bookworm-updates',
        'Components: main',
        'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg',
        '',
        'Types: deb deb-src',
        'URIs: http://mirror.example/debian-security',
        'Suites: bookworm-security',
        'Components: main',
        '',
        'Types: deb-src',
        'URIs: http://sources.example/debian',
        'Suites: bookworm',
        '',
        'Types: deb',
        'URIs: http://disabled.example/debian',
        'Suites: bookworm',
        'Enabled: no',
        '',
        'Types: deb',
        'URIs: https://vendor.example/node',
        'Suites: nodistro',
        'Signed-By:',
        ' -----BEGIN PGP PUBLIC KEY BLOCK-----',
        ' Suites: bookworm',
        '',
      ].join('\n'),
    );
    expect(suites(file)).toEqual([
      'http://mirror.example/debian bookworm',
      'http://mirror.example/debian bookworm-updates',
      'http://mirror.example/debian-security bookworm-security',
    ]);
  });

  it('reads one-line lists, options in brackets included, and lists each suite once', () => {
    const list = path.join(dir, 'sources.list');
    writeFileSync(
      list,
      [
        'deb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://a.example/debian bookworm main',
        '# deb http://commented.example/debian bookworm main',
        'deb-src http://src.example/debian bookworm main',
        'deb https://vendor.example/apt cloud-sdk-bookworm main',
        'deb http://a.example/debian bookworm-updates main contrib',
        'deb http://a.example/debian bookworm main',
        'deb http://old.example/debian bullseye main',
      ].join('\n'),
    );
    expect(suites(list, path.join(dir, 'missing.list'))).toEqual(['http://a.example/debian bookworm', 'http://a.example/debian bookworm-updates']);
  });
});

describe('fetch-debian-packages.sh refuses bad arguments before fetching anything', () => {
  const script = path.join(repoRoot, 'scripts/fixtures/fetch-debian-packages.sh');
  it.each([
    [[], /usage: fetch-debian-packages\.sh/],
    [['only-a-set'], /usage: fetch-debian-packages\.sh/],
    [['--unknown', 'set', 'package'], /usage: fetch-debian-packages\.sh/],
    [['../escape', 'package'], /bad set name '\.\.\/escape'/],
  ])('%j', (args, message) => {
    const r = spawnSync('bash', [script, ...args], { encoding: 'utf8', timeout: 10_000 });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(message);
  });
});
