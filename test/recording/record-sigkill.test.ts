/**
 * `record` killed with SIGKILL: the campaign of scripts/bench/durability-record.js at CI size (20 kills,
 * a fixed seed, printed), and what a kill in the middle of a rotation leaves (too short a window
 * for a random kill to hit often): every step of the rotation interrupted, then the recording
 * continued, must keep every file readable and every sample written before it.
 */
import { spawn, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readRecording, readRecordings } from '../../src/recording/read-recording.js';
import { createMockHost, type MockHost } from '../helpers/mock-host.js';
import { cliPath, nodeGypBuild, repoRoot, requireFile } from '../helpers/paths.js';
import { host } from '../helpers/scenarios.js';

const SEED = 20261126;
let work: string;
let mock: MockHost;
const env = () => ({ ...process.env, GPU_LAYERS_MOCK_SCENARIO: mock.scenarioFile, GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml, GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda, GPU_LAYERS_STATS_DIR: '', GPU_LAYERS_MOCK_TRACE: '' });

beforeAll(() => {
  requireFile(cliPath, 'build the package first (npm ci runs the build)');
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-record-sigkill-'));
  mock = createMockHost(host(2, 2));
});
afterAll(() => {
  mock.remove();
  rmSync(work, { recursive: true, force: true });
});

function record(out: string, args: string[]): void {
  const run = spawnSync(process.execPath, [cliPath, 'record', '--out', out, '--interval', '250ms', '--no-host', ...args], { env: env(), encoding: 'utf8', timeout: 20_000 });
  expect(run.status, run.stderr).toBe(0);
}

/** The recording's parts (what `r.jsonl*` finds), each read alone (each must read), then as one. */
async function readFolder(dir: string): Promise<{ takenAt: string[]; warnings: string[] }> {
  const files = readdirSync(dir)
    .filter((name) => name.startsWith('r.jsonl'))
    .map((name) => path.join(dir, name));
  for (const file of files) await readRecording(file);
  const all = await readRecordings(files);
  return { takenAt: all.samples.map((s) => s.takenAt), warnings: all.warnings };
}

describe('record under SIGKILL', () => {
  it('20 kills at random and aimed moments: every file reads back, each kill loses at most its in-flight sample', { timeout: 60_000 }, () => {
    console.log(`record-sigkill: seed ${SEED} (node scripts/bench/durability-record.js --kills 20 --seed ${SEED} --max-delay 1200 replays it)`);
    const json = path.join(work, 'campaign.json');
    const run = spawnSync(process.execPath, [path.join(repoRoot, 'scripts/bench/durability-record.js'), '--kills', '20', '--seed', String(SEED), '--max-delay', '1200', '--json', json], {
      env: { ...process.env, GPU_LAYERS_MOCK_TRACE: '' },
      encoding: 'utf8',
      timeout: 55_000,
    });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const result = JSON.parse(readFileSync(json, 'utf8'));
    expect(result).toMatchObject({ seed: SEED, kills: 20, failures: 0, unreadableFiles: 0, verdict: 'met' });
    expect(result.worstLoss).toBeLessThanOrEqual(1);
    // The campaign must have recorded something and killed runs mid-recording, not only at startup.
    expect(result.samplesTaken).toBeGreaterThan(20);
    expect(result.killsDuringStartup).toBeLessThan(20);
  });

  it('a rotation interrupted at any step is continued without losing a sample', { timeout: 60_000 }, async () => {
    // A recording of three complete files and a current one, one sample a file (--max-size under
    // two lines), kept 3 deep; a rotation removes FILE.3, renames FILE.2 -> 3, FILE.1 -> 2,
    // FILE -> FILE.1, writes the new file's header to a temporary and renames it to FILE.
    const base = path.join(work, 'base');
    mkdirSync(base);
    const out = path.join(base, 'r.jsonl');
    record(out, ['--count', '1']);
    const line = readFileSync(out, 'utf8').split('\n')[1]!.length + 1;
    const maxSize = String(Math.max(4096, Math.floor(line * 1.5)));
    record(out, ['--count', '3', '--max-size', maxSize, '--keep', '3']);
    const header = readFileSync(out, 'utf8').split('\n')[0]!;
    const before = (await readFolder(base)).takenAt;
    expect(before).toHaveLength(4);

    type Step = (f: (name: string) => string) => void;
    const steps: [string, Step][] = [
      ['removed FILE.3', (f) => rmSync(f('r.jsonl.3'))],
      ['renamed FILE.2 to FILE.3', (f) => renameSync(f('r.jsonl.2'), f('r.jsonl.3'))],
      ['renamed FILE.1 to FILE.2', (f) => renameSync(f('r.jsonl.1'), f('r.jsonl.2'))],
      ['renamed FILE to FILE.1', (f) => renameSync(f('r.jsonl'), f('r.jsonl.1'))],
      // The writer's temporary: hidden, beside FILE (the last test checks the writer's names).
      ['created an empty temporary', (f) => writeFileSync(f('.r.jsonl.99999.tmp'), '')],
      ['wrote the header to the temporary', (f) => writeFileSync(f('.r.jsonl.99999.tmp'), `${header}\n`)],
      ['renamed the temporary to FILE', (f) => renameSync(f('.r.jsonl.99999.tmp'), f('r.jsonl'))],
    ];
    for (let done = 0; done <= steps.length; done++) {
      const dir = path.join(work, `interrupted-${done}`);
      mkdirSync(dir);
      for (const name of readdirSync(base)) copyFileSync(path.join(base, name), path.join(dir, name));
      for (const [, step] of steps.slice(0, done)) step((name) => path.join(dir, name));
      const what = done === 0 ? 'nothing done' : steps[done - 1]![0];

      record(path.join(dir, 'r.jsonl'), ['--count', '2', '--max-size', maxSize, '--keep', '3']);
      const after = await readFolder(dir);
      expect(after.warnings, what).toEqual([]);
      // Two new samples; of the earlier ones, only the oldest may go (the rotation's --keep).
      const kept = before.filter((t) => after.takenAt.includes(t));
      expect(after.takenAt.length - kept.length, what).toBe(2);
      expect(before.slice(before.length - kept.length), what).toEqual(kept);
      expect(kept.length, what).toBeGreaterThanOrEqual(2);
    }
  });

  it("the writer's temporaries never share the recording's name (a kill would leave one where FILE* finds it)", { timeout: 30_000 }, async () => {
    // A kill between creating the temporary and renaming it leaves it behind, empty or with a
    // header only. Named FILE.<pid>.tmp it is picked up by `gpu-layers diagnose FILE*`, and an
    // empty one makes the whole command fail; so every name the writer uses must be FILE or FILE.N.
    const dir = path.join(work, 'names');
    mkdirSync(dir);
    const out = path.join(dir, 'r.jsonl');
    const seen = new Set<string>();
    const watcher = watch(dir, (_event, name) => {
      if (name !== null) seen.add(name);
    });
    try {
      const child = spawn(process.execPath, [cliPath, 'record', '--out', out, '--interval', '250ms', '--no-host', '--count', '4', '--max-size', '4KiB', '--keep', '2'], { env: env(), stdio: 'ignore' });
      expect(await new Promise((resolve) => child.on('close', resolve))).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      watcher.close();
    }
    expect([...seen].some((name) => name.endsWith('.tmp')), `the writer's temporaries were not seen: ${[...seen].join(', ')}`).toBe(true);
    const sharing = [...seen].filter((name) => name.startsWith('r.jsonl') && !/^r\.jsonl(\.\d+)?$/.test(name));
    expect(sharing).toEqual([]);
    expect(existsSync(out)).toBe(true);
  });
});
