/**
 * The companion as a Python package: the wheel python/companion_wheel.py builds (the one the npm
 * build ships in dist/python/ and `gpu-layers companion --wheel` names) is a valid, reproducible
 * PEP 427 wheel, pip builds the same bytes from python/pyproject.toml, and installed into a fresh
 * venv it starts the companion through its .pth hook in a workload that has GPU_LAYERS_STATS_DIR
 * set and nothing else (no PYTHONPATH to the companion, no import), in spawned workers too; without
 * the variable nothing is imported and nothing written. `python -m gpu_layers_companion --check`
 * says what it sees and exits 0 or 1.
 *
 * The venv: `python3 -m venv` (Debian: python3-venv), which installs the wheel with the venv's own
 * pip, offline. Where venv has no ensurepip, the venv is made --without-pip and the wheel unpacked
 * into its site-packages as pip would (the test name says which ran).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { companionCommand } from '../../src/cli/commands/companion-command.js';
import { companionWheel, companionWheelVersion } from '../../src/companion-path.js';
import { companionFileSchema } from '../../src/sources/companion.js';
import { python, repoRoot } from '../helpers/paths.js';

const fakeTorch = path.join(repoRoot, 'test/fixtures/fake-torch');
const builder = path.join(repoRoot, 'python/companion_wheel.py');
const npmVersion = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;
const wheelFile = `gpu_layers_companion-${companionWheelVersion(npmVersion)}-py3-none-any.whl`;

let work: string;
let wheel: string;
let venvPython: string;
let sitePackages: string;
let installedBy: 'pip' | 'unzip';
const children: ChildProcess[] = [];

function run(command: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd = work) {
  return spawnSync(command, args, { env, cwd, encoding: 'utf8', timeout: 120_000 });
}

function mustRun(command: string, args: string[], env?: NodeJS.ProcessEnv): string {
  const result = run(command, args, env);
  if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} exited ${result.status}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

/** The wheel's entries, read by Python's zipfile: name -> bytes, zip time, Unix mode. */
function wheelEntries(file: string): Map<string, { data: Buffer; time: number[]; mode: number }> {
  const text = mustRun(python, ['-c', [
    'import base64, json, sys, zipfile',
    'z = zipfile.ZipFile(sys.argv[1])',
    'print(json.dumps([[i.filename, base64.b64encode(z.read(i)).decode(), list(i.date_time), i.external_attr >> 16] for i in z.infolist()]))',
  ].join('\n'), file]);
  return new Map((JSON.parse(text) as [string, string, number[], number][]).map(([name, data, time, mode]) => [name, { data: Buffer.from(data, 'base64'), time, mode }]));
}

/** The environment of a workload: no PYTHONPATH but the fake torch, no GPU_LAYERS_* but what is given. */
function workloadEnv(extra: Record<string, string>, stateFile: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('GPU_LAYERS_') && !key.startsWith('PYTHON') && key !== 'VIRTUAL_ENV') env[key] = value;
  }
  return { ...env, PYTHONPATH: fakeTorch, FAKE_TORCH_STATE: stateFile, ...extra };
}

function freshState(name: string, initialized: boolean): string {
  const stateFile = path.join(work, `${name}.state.json`);
  const stats = { 'reserved_bytes.all.current': 6 * 2 ** 30, 'allocated_bytes.all.current': 5 * 2 ** 30, num_ooms: 0 };
  writeFileSync(stateFile, JSON.stringify({ initialized, devices: [{ name: 'Fake H100', uuid: 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17', stats }] }));
  return stateFile;
}

async function waitFor<T>(probe: () => T | undefined | null | false, ms: number): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > end) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

// A workload as vLLM runs one: imports torch, starts a worker with multiprocessing's spawn (a new
// interpreter: only what site does at start-up reaches it), and reports which companion modules
// each process has; neither process names the companion.
const WORKLOAD = [
  'import multiprocessing as mp, sys, time, torch',
  'def mods():',
  '    return sorted(m for m in sys.modules if m.startswith("gpu_layers"))',
  'def worker(queue):',
  '    import torch',
  '    queue.put(mods())',
  '    time.sleep(30)',
  'if __name__ == "__main__":',
  '    mp.set_start_method("spawn")',
  '    queue = mp.Queue()',
  '    child = mp.Process(target=worker, args=(queue,), daemon=True)',
  '    child.start()',
  '    print("main", mods(), flush=True)',
  '    print("worker", child.pid, queue.get(timeout=20), flush=True)',
  '    time.sleep(30)',
  '',
].join('\n');

function startWorkload(env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const script = path.join(work, `workload-${children.length}.py`);
  writeFileSync(script, WORKLOAD);
  const child = spawn(venvPython, [script], { env, cwd: work, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  return { child, output: () => output };
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-wheel-'));
  wheel = mustRun(python, [builder, path.join(work, 'wheel')]).trim();
  const venv = path.join(work, 'venv');
  const withPip = run(python, ['-m', 'venv', venv]);
  if (withPip.status === 0 && existsSync(path.join(venv, 'bin/pip'))) {
    installedBy = 'pip';
  } else {
    // No ensurepip (Debian without python3-venv's wheels): a bare venv, the wheel unpacked into it.
    rmSync(venv, { recursive: true, force: true });
    mustRun(python, ['-m', 'venv', '--without-pip', venv]);
    installedBy = 'unzip';
  }
  venvPython = path.join(venv, 'bin/python');
  sitePackages = mustRun(venvPython, ['-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])']).trim();
  if (installedBy === 'pip') {
    mustRun(venvPython, ['-m', 'pip', 'install', '--no-index', '--no-deps', '--disable-pip-version-check', wheel]);
  } else {
    mustRun(venvPython, ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', wheel, sitePackages]);
  }
}, 180_000);

afterAll(() => {
  for (const child of children) child.kill('SIGKILL');
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the companion wheel', () => {
  it('is a PEP 427 wheel: named by package.json\'s version, its RECORD digests match, no dependencies, no sitecustomize', () => {
    expect(path.basename(wheel)).toBe(wheelFile);
    const entries = wheelEntries(wheel);
    const distInfo = `gpu_layers_companion-${companionWheelVersion(npmVersion)}.dist-info`;
    expect([...entries.keys()]).toEqual([
      'gpu_layers_companion.py',
      'gpu_layers_companion_hook.py',
      'gpu_layers_companion.pth',
      `${distInfo}/METADATA`,
      `${distInfo}/WHEEL`,
      `${distInfo}/top_level.txt`,
      `${distInfo}/RECORD`,
    ]);
    // The module is the one the npm package ships for PYTHONPATH, byte for byte.
    expect(entries.get('gpu_layers_companion.py')!.data.equals(readFileSync(path.join(repoRoot, 'python/gpu_layers_companion/gpu_layers_companion.py')))).toBe(true);
    const metadata = entries.get(`${distInfo}/METADATA`)!.data.toString('utf8');
    expect(metadata).toMatch(/^Metadata-Version: 2\.1\nName: gpu-layers-companion\n/);
    expect(metadata).toContain(`\nVersion: ${npmVersion}\n`);
    expect(metadata).toContain('\nRequires-Python: >=3.8\n');
    expect(metadata).not.toContain('Requires-Dist');
    expect(entries.get(`${distInfo}/WHEEL`)!.data.toString()).toMatch(/^Wheel-Version: 1\.0\n.*\nRoot-Is-Purelib: true\nTag: py3-none-any\n$/s);
    // RECORD: every other entry with its urlsafe-base64 sha256 (no padding) and size, itself last and bare.
    const record = entries.get(`${distInfo}/RECORD`)!.data.toString('utf8').trimEnd().split('\n');
    expect(record.at(-1)).toBe(`${distInfo}/RECORD,,`);
    const listed = record.slice(0, -1).map((line) => line.split(','));
    expect(listed.map(([name]) => name)).toEqual([...entries.keys()].slice(0, -1));
    for (const [name, hash, size] of listed) {
      const data = entries.get(name!)!.data;
      expect(hash, name).toBe(`sha256=${createHash('sha256').update(data).digest('base64url')}`);
      expect(Number(size), name).toBe(data.length);
    }
    // The .pth: one line, which site executes because it starts with "import".
    const pth = entries.get('gpu_layers_companion.pth')!.data.toString();
    expect(pth.split('\n').filter(Boolean)).toHaveLength(1);
    expect(pth).toMatch(/^import /);
    expect(entries.has('sitecustomize.py')).toBe(false);
    for (const entry of entries.values()) {
      expect(entry.time).toEqual([1980, 1, 1, 0, 0, 0]);
      expect(entry.mode).toBe(0o100644);
    }
  });

  it('is reproducible: a second build, and pip building python/ through its pyproject, give the same bytes', () => {
    const again = mustRun(python, [builder, path.join(work, 'again')]).trim();
    expect(readFileSync(again).equals(readFileSync(wheel))).toBe(true);
    if (installedBy === 'pip') {
      // The venv's own pip, offline: the in-tree backend needs nothing installed.
      mustRun(venvPython, ['-m', 'pip', 'wheel', '--no-index', '--no-deps', '--no-build-isolation', '--disable-pip-version-check', '-w', path.join(work, 'pip'), path.join(repoRoot, 'python')]);
      expect(readFileSync(path.join(work, 'pip', wheelFile)).equals(readFileSync(wheel))).toBe(true);
    }
  }, 120_000);

  it('installs into a fresh venv (by its pip; unpacked where venv has no pip): the .pth and both modules in site-packages, no sitecustomize', () => {
    const files = readdirSync(sitePackages);
    expect(files).toEqual(expect.arrayContaining(['gpu_layers_companion.pth', 'gpu_layers_companion.py', 'gpu_layers_companion_hook.py']));
    expect(files).not.toContain('sitecustomize.py');
    if (installedBy === 'pip') {
      const show = mustRun(venvPython, ['-m', 'pip', 'show', '--disable-pip-version-check', 'gpu-layers-companion']);
      expect(show).toContain(`Version: ${npmVersion}`);
    }
  });

  it('starts in a workload with GPU_LAYERS_STATS_DIR set and nothing else, in its spawned worker too, without initialising CUDA', async () => {
    const statsDir = path.join(work, 'stats-on');
    const stateFile = freshState('on', true);
    const { child, output } = startWorkload(workloadEnv({ GPU_LAYERS_STATS_DIR: statsDir }, stateFile));
    const worker = await waitFor(() => /^worker (\d+) (.*)$/m.exec(output()), 30_000).catch(() => {
      throw new Error(`the workload did not start its worker: ${output()}`);
    });
    expect(output()).toContain("main ['gpu_layers_companion', 'gpu_layers_companion_hook']");
    expect(worker[2]).toBe("['gpu_layers_companion', 'gpu_layers_companion_hook']");
    // The default interval (2 s): each process writes its own file.
    for (const pid of [child.pid!, Number(worker[1])]) {
      const document = await waitFor(() => {
        try {
          return companionFileSchema.parse(JSON.parse(readFileSync(path.join(statsDir, `${pid}.json`), 'utf8')));
        } catch {
          return undefined;
        }
      }, 10_000).catch(() => {
        throw new Error(`no companion file for ${pid} in ${statsDir}: ${existsSync(statsDir) ? readdirSync(statsDir).join(', ') : 'no folder'}; ${output()}`);
      });
      expect(document.pid).toBe(pid);
      expect(document.torchVersion).toBe('2.5.1+fake');
      expect(document.devices[0]!.stats['reserved_bytes.all.current']).toBe(6 * 2 ** 30);
    }
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  }, 60_000);

  it('does nothing without GPU_LAYERS_STATS_DIR: no companion module imported, no file, no folder', async () => {
    const statsDir = path.join(work, 'stats-off');
    const stateFile = freshState('off', true);
    const { output } = startWorkload(workloadEnv({}, stateFile));
    await waitFor(() => /^worker \d+ /m.test(output()), 30_000).catch(() => {
      throw new Error(`the workload did not start its worker: ${output()}`);
    });
    expect(output()).toContain('main []');
    expect(output()).toMatch(/^worker \d+ \[\]$/m);
    await new Promise((resolve) => setTimeout(resolve, 2500)); // past the default interval
    expect(existsSync(statsDir)).toBe(false);
    expect(readdirSync(work).filter((name) => name.startsWith('stats-off'))).toEqual([]);
  }, 60_000);

  it('--check: what it sees, exit 0 with a trusted folder and the hook active', () => {
    const statsDir = path.join(work, 'stats-check');
    mkdirSync(statsDir, { mode: 0o700 });
    const stateFile = freshState('check', false);
    const check = run(venvPython, ['-m', 'gpu_layers_companion', '--check'], workloadEnv({ GPU_LAYERS_STATS_DIR: statsDir }, stateFile));
    expect(check.stderr).toBe('');
    expect(check.status, check.stdout).toBe(0);
    const glibc = mustRun(python, ['-c', 'import os; print(os.confstr("CS_GNU_LIBC_VERSION").split()[1])']).trim();
    const pythonVersion = mustRun(venvPython, ['-c', 'import platform; print(platform.python_version())']).trim();
    expect(check.stdout).toContain(`companion:    ${path.join(sitePackages, 'gpu_layers_companion.py')}`);
    expect(check.stdout).toContain(`python:       CPython ${pythonVersion}\n`);
    expect(check.stdout).toContain(`glibc:        ${glibc}\n`);
    expect(check.stdout).toContain('mallinfo2:    available');
    expect(check.stdout).toContain('torch:        2.5.1+fake, CUDA not initialised in this process');
    expect(check.stdout).toMatch(new RegExp(`stats folder: ${statsDir}: trusted \\(owner uid \\d+, mode 0700\\)`));
    expect(check.stdout).toContain(`.pth hook:    active: starts the companion in every process where GPU_LAYERS_STATS_DIR is set (not in this check) (${path.join(sitePackages, 'gpu_layers_companion.pth')})`);
    expect(check.stdout.trimEnd().split('\n').at(-1)).toBe('ok');
    // It read torch without initialising CUDA (the fake records any call that would).
    expect(existsSync(`${stateFile}.violations`)).toBe(false);
  });

  it('--check: exit 1 without GPU_LAYERS_STATS_DIR, with a folder others can write, and without torch', () => {
    const stateFile = freshState('check-off', false);
    const unset = run(venvPython, ['-m', 'gpu_layers_companion', '--check'], workloadEnv({}, stateFile));
    expect(unset.status, unset.stdout).toBe(1);
    expect(unset.stdout).toContain('stats folder: GPU_LAYERS_STATS_DIR is not set');
    expect(unset.stdout).toContain('.pth hook:    active: starts the companion in every process once GPU_LAYERS_STATS_DIR is set');
    expect(unset.stdout).toContain('problem:      GPU_LAYERS_STATS_DIR is not set');

    const open = path.join(work, 'stats-open');
    mkdirSync(open);
    chmodSync(open, 0o777); // writable by all, no sticky bit: the companion refuses it
    const refused = run(venvPython, ['-m', 'gpu_layers_companion', '--check'], workloadEnv({ GPU_LAYERS_STATS_DIR: open }, stateFile));
    expect(refused.status, refused.stdout).toBe(1);
    expect(refused.stdout).toContain(`stats folder: refused: ${open} can be written by other users and has no sticky bit`);

    const env = workloadEnv({ GPU_LAYERS_STATS_DIR: path.join(work, 'stats-new') }, stateFile);
    delete env.PYTHONPATH;
    const noTorch = run(venvPython, ['-m', 'gpu_layers_companion', '--check'], env);
    expect(noTorch.status, noTorch.stdout).toBe(1);
    expect(noTorch.stdout).toContain('torch:        not importable');
    expect(noTorch.stdout).toContain(`stats folder: ${path.join(work, 'stats-new')} does not exist yet: the companion makes it 0700`);

    const usage = run(venvPython, ['-m', 'gpu_layers_companion'], env);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('usage: python -m gpu_layers_companion --check');
  });

  it('with both the wheel and the PYTHONPATH folder, one companion runs (the sitecustomize way keeps working)', () => {
    const statsDir = path.join(work, 'stats-both');
    const stateFile = freshState('both', false);
    const env = workloadEnv({ GPU_LAYERS_STATS_DIR: statsDir }, stateFile);
    env.PYTHONPATH = `${path.join(repoRoot, 'python/gpu_layers_companion')}:${fakeTorch}`;
    const out = mustRun(venvPython, ['-c', [
      'import sys, threading',
      'print(sorted(m for m in sys.modules if m.startswith("gpu_layers")))',
      'print(sum(t.name == "gpu-layers-companion" for t in threading.enumerate()))',
      'print(sys.modules["gpu_layers_companion"].__file__)',
    ].join('\n')], env);
    const [modules, threads, file] = out.trim().split('\n');
    expect(modules).toBe("['gpu_layers_companion', 'gpu_layers_companion_hook']");
    expect(threads).toBe('1');
    // PYTHONPATH comes before site-packages on sys.path, so the hook found the folder's module.
    expect(file).toBe(path.join(repoRoot, 'python/gpu_layers_companion/gpu_layers_companion.py'));
  });
});

describe('gpu-layers companion --wheel', () => {
  it('prints the wheel the build ships (dist/python), the file python/companion_wheel.py names', async () => {
    const shipped = companionWheel();
    expect(shipped).toBe(path.join(repoRoot, 'dist/python', wheelFile));
    // What the npm build runs (npm run build:companion-wheel), here so the test needs no full build.
    mustRun(python, [builder, path.dirname(shipped)]);
    let stdout = '';
    let stderr = '';
    const io = { stdout: { write: (text: string) => (stdout += text) }, stderr: { write: (text: string) => (stderr += text) } };
    expect(await companionCommand(['--wheel'], io as never)).toBe(0);
    expect(stdout).toBe(`${shipped}\n`);
    expect(stderr).toBe('');
    expect(readFileSync(shipped).equals(readFileSync(wheel))).toBe(true);
    stdout = '';
    expect(await companionCommand([], io as never)).toBe(0);
    expect(stdout).toContain(`pip install ${shipped}`);
    expect(stdout).toContain('python -m gpu_layers_companion --check');
    expect(stdout).toContain('GPU_LAYERS_STATS_DIR=/dev/shm/gpu-layers');
  });

  it('PEP 440 versions of npm versions, as the Python builder writes them', () => {
    expect(companionWheelVersion('0.1.0')).toBe('0.1.0');
    expect(companionWheelVersion('1.2.3-beta.4')).toBe('1.2.3b4');
    expect(companionWheelVersion('1.2.3-rc.1')).toBe('1.2.3rc1');
    expect(() => companionWheelVersion('1.2.3-next.1')).toThrow(/PEP 440/);
    const fromPython = mustRun(python, ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import companion_wheel as w; print(w.pep440_version("1.2.3-beta.4"), w.pep440_version("2.0.0-alpha.7"))', path.join(repoRoot, 'python')]);
    expect(fromPython.trim()).toBe(`${companionWheelVersion('1.2.3-beta.4')} ${companionWheelVersion('2.0.0-alpha.7')}`);
  });
});
