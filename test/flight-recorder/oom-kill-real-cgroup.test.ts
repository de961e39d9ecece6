/**
 * A real OOM kill, end to end: a Python process in a memory cgroup of its own with a small limit
 * (made here: needs root and a writable memory controller, as on CI; skipped otherwise) is listed
 * by the mock NVML as a GPU process and read through the real /proc and cgroup files. It grows
 * its heap until the kernel's OOM killer ends it; the monitor's next sample names it gone with
 * the cgroup's oom_kill count risen, the flight recorder writes the window, and `diagnose` on
 * that recording says it was OOM-killed and what grew before.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { diagnose } from '../../src/diagnosis/diagnose.js';
import { FlightRecorder, type Flight } from '../../src/flight-recorder/flight-recorder.js';
import { FakeHost } from '../../src/mock-host/fake-host.js';
import { openMonitor } from '../../src/monitor/monitor.js';
import { readRecording } from '../../src/recording/read-recording.js';
import { h100, MiB } from '../helpers/scenarios.js';

const CGROUP_ROOT = '/sys/fs/cgroup';
const NAME = `gpu-layers-oom-test-${process.pid}`;
const LIMIT = 160 * MiB;

/** A memory cgroup of our own with LIMIT, v1 or v2, or null when this machine will not let us. */
function makeCgroup(): { folder: string; procs: string; version: 1 | 2 } | null {
  if (process.geteuid?.() !== 0) return null;
  const v1 = path.join(CGROUP_ROOT, 'memory');
  try {
    if (existsSync(path.join(v1, 'memory.limit_in_bytes'))) {
      const folder = path.join(v1, NAME);
      mkdirSync(folder);
      writeFileSync(path.join(folder, 'memory.limit_in_bytes'), String(LIMIT));
      // No swap: the kernel must kill, not page the heap out.
      if (existsSync(path.join(folder, 'memory.swappiness'))) writeFileSync(path.join(folder, 'memory.swappiness'), '0');
      return { folder, procs: path.join(folder, 'cgroup.procs'), version: 1 };
    }
    if (readFileSync(path.join(CGROUP_ROOT, 'cgroup.subtree_control'), 'utf8').includes('memory')) {
      const folder = path.join(CGROUP_ROOT, NAME);
      mkdirSync(folder);
      writeFileSync(path.join(folder, 'memory.max'), String(LIMIT));
      if (existsSync(path.join(folder, 'memory.swap.max'))) writeFileSync(path.join(folder, 'memory.swap.max'), '0');
      return { folder, procs: path.join(folder, 'cgroup.procs'), version: 2 };
    }
  } catch {
    return null;
  }
  return null;
}

let cgroup: ReturnType<typeof makeCgroup> = null;
let host: FakeHost;
let child: ChildProcess;

beforeAll(() => {
  cgroup = makeCgroup();
  host = new FakeHost();
});

afterAll(async () => {
  child?.kill('SIGKILL');
  await host.close();
  if (cgroup !== null) {
    // The cgroup can go once its process is gone.
    for (let i = 0; i < 50 && existsSync(cgroup.folder); i++) {
      try {
        rmdirSync(cgroup.folder);
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    }
  }
});

describe('an OOM kill in a real cgroup', () => {
  it('leaves a flight recording that diagnose reads: killed by the OOM killer, after its heap grew', { timeout: 60_000 }, async (context) => {
    if (cgroup === null) return context.skip();
    // Grows its heap 8 MiB at a time on each line it reads (written pages: a zeroed bytearray
    // would be calloc's untouched mapping, never resident), and says how much it holds.
    child = spawn('python3', ['-u', '-c', 'import sys\nheap=[]\nfor line in sys.stdin:\n    heap.append(b"x" * (8 << 20))\n    print(len(heap) * 8, flush=True)\n'], { stdio: ['pipe', 'pipe', 'inherit'] });
    const pid = child.pid!;
    writeFileSync(cgroup.procs, String(pid));
    const exited = () => child.exitCode !== null || child.signalCode !== null;
    const exit = new Promise((resolve) => child.once('exit', resolve));
    const grow = async (steps: number) => {
      for (let i = 0; i < steps && !exited(); i++) {
        const answered = new Promise((resolve) => child.stdout!.once('data', resolve));
        child.stdin!.write('\n');
        await Promise.race([answered, exit]);
      }
    };
    host.writeScenario({ driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: 12040, devices: [h100(0, [{ type: 'compute', pid, usedBytes: 2048 * MiB }])] });
    const options = host.monitorOptions();
    const monitor = await openMonitor({ probe: options.probe!, layers: { ...options.layers, procRoot: '/proc', cgroupRoot: CGROUP_ROOT, statsDir: null } });
    const flights = new FlightRecorder({ dir: path.join(host.dir, 'flights'), host: 'test', intervalMs: 1000, gpuLayersVersion: 'test' });
    const written: Flight[] = [];
    try {
      // Eight samples while it grows by 80 MiB (below the limit), then past it.
      for (let i = 0; i < 8; i++) {
        await grow(1);
        written.push(...flights.observe(await monitor.sample()).flights);
      }
      await grow(40);
      await Promise.race([
        exit,
        new Promise((resolve) => setTimeout(resolve, 20_000)),
      ]);
      expect(child.signalCode).toBe('SIGKILL');
      // NVML still lists it this once (the driver has not caught up), then not.
      host.writeScenario({ driverVersion: '550.54.15', nvmlVersion: '12.550.54.15', cudaDriverVersion: 12040, devices: [h100(0, [])] });
      const after = await monitor.sample();
      written.push(...flights.observe(after).flights);
      expect(after.exits).toEqual([expect.objectContaining({ pid, oomKillsAfter: expect.any(Number) })]);
      expect(after.exits![0]!.oomKillsAfter).toBeGreaterThan(after.exits![0]!.oomKillsBefore!);
    } finally {
      await monitor.close();
    }
    expect(written).toHaveLength(1);
    expect(written[0]!.event).toMatchObject({ kind: 'oom-kill', pid });
    const recording = await readRecording(written[0]!.recording);
    const finding = diagnose(recording.samples).find((f) => f.id === 'oom-killed');
    expect(finding?.subject.pid).toBe(pid);
    // What grew before: its resident set, read from the real /proc.
    expect(finding!.evidence.map((e) => e.series)).toContain('host.rssBytes');
    expect(finding!.summary).toMatch(/resident set grew/);
  });
});
