/**
 * The companion on a shared host: another user who owns the stats folder, or plants links in a
 * shared one, must not get the workload to write over a file of the attacker's choosing, and a
 * folder that is not safe is refused once, on stderr, with the workload unharmed. Run by real
 * python3 with the fake torch; the other user is `nobody`, handed files by chown (root only).
 */
import { spawn } from 'node:child_process';
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { companionFileSchema } from '../../src/sources/companion.js';
import { OTHER_UID, giveToOtherUser, runningAsRoot } from '../helpers/other-user.js';
import { python, repoRoot } from '../helpers/paths.js';

const companionDir = path.join(repoRoot, 'python/gpu_layers_companion');
const fakeTorch = path.join(repoRoot, 'test/fixtures/fake-torch');
const VICTIM_TEXT = 'the victim file, untouched\n';

let work: string;
let target: string;
let stateFile: string;

beforeEach(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-trust-'));
  chmodSync(work, 0o755);
  target = path.join(work, 'victim.txt');
  writeFileSync(target, VICTIM_TEXT);
  stateFile = path.join(work, 'torch-state.json');
  writeFileSync(stateFile, JSON.stringify({ initialized: true, devices: [{ uuid: 'u', stats: { 'reserved_bytes.all.current': 5, 'allocated_bytes.all.current': 4 } }] }));
});
afterEach(() => rmSync(work, { recursive: true, force: true }));

/**
 * Runs `body` in python3 with the companion importable but not started; `PID` is its pid. The
 * body plants what the attacker would before the companion writes (the pid is known only inside).
 * `settled()` waits (up to 10 s) until the companion's thread has written a file or said why not,
 * then lets a few more intervals pass (a refusal is said once, however many times it is met).
 */
function runPython(body: string, env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = path.join(work, 'host.py');
  const preamble = [
    'import os, sys, time',
    'PID = os.getpid()',
    'import torch',
    'import gpu_layers_companion as companion',
    'def settled():',
    '    deadline = time.time() + 10',
    '    while not (companion._state.get("said") or companion._state.get("path")) and time.time() < deadline:',
    '        time.sleep(0.02)',
    '    time.sleep(0.2)',
  ].join('\n');
  writeFileSync(script, `${preamble}\n${body}\n`);
  const child = spawn(python, [script], {
    env: { ...process.env, PYTHONPATH: [companionDir, fakeTorch].join(':'), GPU_LAYERS_STATS_DIR: '', FAKE_TORCH_STATE: stateFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: 30_000,
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  // 'close', not 'exit': the output is whole only once both pipes have ended.
  return new Promise((resolve) => child.on('close', (code) => resolve({ code, stdout, stderr })));
}

/** Python that plants, as the other user, links named like the companion's files to the victim. */
function plantLinks(folder: string): string {
  return [
    `for name in (".%d.json.tmp" % PID, "%d.json" % PID):`,
    `    link = os.path.join(${JSON.stringify(folder)}, name)`,
    `    os.symlink(${JSON.stringify(target)}, link)`,
    `    os.lchown(link, ${OTHER_UID}, ${OTHER_UID})`,
  ].join('\n');
}

describe.runIf(runningAsRoot)('the companion in a folder other users can reach', () => {
  it('a root-made sticky folder is used, and links planted in it never redirect a write', async () => {
    const shared = path.join(work, 'shared');
    mkdirSync(shared);
    chmodSync(shared, 0o1777);
    const run = await runPython(`${plantLinks(shared)}\nticks = companion._start_time_ticks()\nprint(companion.write_once(${JSON.stringify(shared)}, ticks, 2.0))\nprint(PID)\ncompanion._state['path'] = None  # kept past exit, to be checked`);
    expect(run.stderr).toBe('');
    expect(readFileSync(target, 'utf8')).toBe(VICTIM_TEXT);
    const pid = Number(run.stdout.trim().split('\n')[1]);
    const written = path.join(shared, `${pid}.json`);
    expect(run.stdout.split('\n')[0]).toBe(written);
    // The planted <pid>.json link itself was replaced by the companion's own regular file.
    const info = lstatSync(written);
    expect(info.isFile()).toBe(true);
    expect(info.uid).toBe(process.getuid!());
    expect(companionFileSchema.parse(JSON.parse(readFileSync(written, 'utf8'))).pid).toBe(pid);
    // The planted temporary link is left alone (not ours) and no temporary of ours stays.
    expect(readdirSync(shared).sort()).toEqual([`.${pid}.json.tmp`, `${pid}.json`]);
  });

  it('refuses a folder another user owns: one line on stderr, nothing written, the workload runs on', async () => {
    const theirs = path.join(work, 'theirs');
    mkdirSync(theirs);
    chmodSync(theirs, 0o1777);
    giveToOtherUser(theirs);
    const body = `${plantLinks(theirs)}\ncompanion.start(${JSON.stringify(theirs)}, 0.05)\nsettled()\nprint("workload done")`;
    const run = await runPython(body);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('workload done\n');
    expect(readFileSync(target, 'utf8')).toBe(VICTIM_TEXT);
    const lines = run.stderr.split('\n').filter(Boolean);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^gpu-layers companion: not writing allocator stats: .*theirs belongs to uid 65534, another user/);
    expect(readdirSync(theirs).every((name) => lstatSync(path.join(theirs, name)).isSymbolicLink())).toBe(true);
  });

  it('refuses its own folder when other users can write it and it has no sticky bit', async () => {
    const open = path.join(work, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const run = await runPython(`companion.start(${JSON.stringify(open)}, 0.05)\nsettled()\nprint("ok")`);
    expect(run.stdout).toBe('ok\n');
    expect(run.stderr.trim()).toMatch(/open can be written by other users and has no sticky bit/);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(readdirSync(open)).toEqual([]);
  });

  it('creates a missing folder 0700, its user alone, and writes there', async () => {
    const fresh = path.join(work, 'fresh', 'stats');
    const run = await runPython(`companion.start(${JSON.stringify(fresh)}, 0.05)\nsettled()\nprint(os.path.exists(os.path.join(${JSON.stringify(fresh)}, "%d.json" % PID)))`);
    expect(run.stderr).toBe('');
    expect(run.stdout).toBe('True\n');
    expect(statSync(fresh).mode & 0o7777).toBe(0o700);
    expect(readdirSync(fresh)).toEqual([]); // its file removed at exit
  });

  it('refuses a folder that a link planted by another user points to', async () => {
    const theirs = path.join(work, 'theirs');
    mkdirSync(theirs);
    giveToOtherUser(theirs);
    const link = path.join(work, 'stats-link');
    symlinkSync(theirs, link);
    const run = await runPython(`companion.start(${JSON.stringify(link)}, 0.05)\nsettled()\nprint("ok")`);
    expect(run.stdout).toBe('ok\n');
    expect(run.stderr).toMatch(/belongs to uid 65534/);
    expect(readdirSync(theirs)).toEqual([]);
  });
});
