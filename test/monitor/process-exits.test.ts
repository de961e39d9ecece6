/**
 * The monitor's exit tracker against a /proc and a cgroup v2 tree on disk: a GPU process that
 * is gone with its cgroup's OOM-kill count risen (read from its own cgroup, or from the parent's
 * when the container's went with it), one that only left the GPU, a pid reused by another
 * process, and a restart without a kill.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { LayeredSample } from '../../src/layers/schema.js';
import { ExitTracker } from '../../src/monitor/process-exits.js';

const POD = '/kubepods.slice/kubepods-pod1.slice';
const CONTAINER = `${POD}/cri-containerd-aaaa.scope`;
const START = 777_000;

let root: string;
let proc: string;
let cgroups: string;

function events(cgroupPath: string, oomKills: number): void {
  const folder = path.join(cgroups, cgroupPath);
  mkdirSync(folder, { recursive: true });
  writeFileSync(path.join(folder, 'memory.events'), `low 0\nhigh 0\nmax 12\noom ${oomKills}\noom_kill ${oomKills}\n`);
}

function processIs(pid: number, startTicks: number): void {
  mkdirSync(path.join(proc, String(pid)), { recursive: true });
  writeFileSync(path.join(proc, String(pid), 'stat'), `${pid} (python3) S 1 ${pid} ${pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${startTicks} 0 0\n`);
  writeFileSync(path.join(proc, String(pid), 'status'), `Name:\tpython3\nNSpid:\t${pid}\nUid:\t0\t0\t0\t0\n`);
}

/** A sample with these GPU processes on device 0, each in CONTAINER with `oomKills` counted there. */
function sampleWith(takenAt: string, pids: number[], oomKills: number): LayeredSample {
  const processes = pids.map((pid) => ({
    pid,
    host: {
      startTimeTicks: START,
      container: { cgroupVersion: 2, path: CONTAINER, usageBytes: 1, workingSetBytes: 1, limitBytes: 2, oomEvents: oomKills, oomKills, errors: {} },
    },
  }));
  return { takenAt, devices: [{ index: 0, uuid: 'GPU-0', processes, mig: null }] } as unknown as LayeredSample;
}

beforeEach(() => {
  root = mkdtempSync(path.join(tmpdir(), 'gpu-layers-exits-'));
  proc = path.join(root, 'proc');
  cgroups = path.join(root, 'cgroup');
  processIs(500, START);
  events(CONTAINER, 0);
  events(POD, 0);
});

afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('ExitTracker', () => {
  it('nothing to compare at the first sample; a process gone while its cgroup counted a kill is an OOM kill', async () => {
    const tracker = new ExitTracker(proc, cgroups);
    expect(await tracker.update(sampleWith('2026-12-07T03:00:00.000Z', [500], 0))).toBeNull();
    rmSync(path.join(proc, '500'), { recursive: true });
    events(CONTAINER, 1);
    const exits = await tracker.update(sampleWith('2026-12-07T03:00:05.000Z', [], 1));
    expect(exits).toEqual([
      {
        pid: 500,
        deviceIndex: 0,
        uuid: 'GPU-0',
        startTimeTicks: START,
        lastSeenAt: '2026-12-07T03:00:00.000Z',
        cgroupPath: CONTAINER,
        oomKillsBefore: 0,
        oomKillsAfter: 1,
        oomKillsReadFrom: CONTAINER,
        errors: {},
      },
    ]);
  });

  it("reads the parent's count when the container's cgroup went with the process", async () => {
    const tracker = new ExitTracker(proc, cgroups);
    events(POD, 4);
    await tracker.update(sampleWith('2026-12-07T03:00:00.000Z', [500], 0));
    rmSync(path.join(proc, '500'), { recursive: true });
    rmSync(path.join(cgroups, CONTAINER), { recursive: true });
    events(POD, 5);
    const [exit] = (await tracker.update(sampleWith('2026-12-07T03:00:05.000Z', [], 0)))!;
    expect(exit).toMatchObject({ oomKillsBefore: 4, oomKillsAfter: 5, oomKillsReadFrom: POD });
  });

  it('a process that only left the GPU is no exit; a pid now held by another process is', async () => {
    const tracker = new ExitTracker(proc, cgroups);
    await tracker.update(sampleWith('2026-12-07T03:00:00.000Z', [500], 0));
    expect(await tracker.update(sampleWith('2026-12-07T03:00:05.000Z', [], 0))).toEqual([]);

    await tracker.update(sampleWith('2026-12-07T03:00:10.000Z', [500], 0));
    processIs(500, START + 100);
    const exits = await tracker.update(sampleWith('2026-12-07T03:00:15.000Z', [], 0));
    expect(exits).toHaveLength(1);
    // A restart, not a kill: the count did not move.
    expect(exits![0]).toMatchObject({ oomKillsBefore: 0, oomKillsAfter: 0 });
  });

  it('an exit whose cgroup is unknown or unreadable says why the count is missing', async () => {
    const tracker = new ExitTracker(proc, cgroups);
    await tracker.update(sampleWith('2026-12-07T03:00:00.000Z', [500], 0));
    rmSync(path.join(proc, '500'), { recursive: true });
    rmSync(cgroups, { recursive: true });
    const [exit] = (await tracker.update(sampleWith('2026-12-07T03:00:05.000Z', [], 0)))!;
    expect(exit!.oomKillsAfter).toBeNull();
    expect(exit!.errors.oomKillsAfter?.code).toBe('CGROUP_GONE');
  });
});
