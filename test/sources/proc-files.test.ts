/** The host layer from /proc: parsers on fixtures, the reader on a fake /proc and on the real one. */
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { hostLayerSchema } from '../../src/layers/schema.js';
import { hostLayerOf } from '../../src/layers/host-layer.js';
import { readProcessHost } from '../../src/sources/process-host.js';
import { parseCgroupContainerId, parseCgroupPodUid, parseSmapsDriverRss, parseStatStartTime, parseStatus } from '../../src/sources/proc-files.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/proc');
const fixture = (file: string) => readFileSync(path.join(fixtures, '4242', file), 'utf8');
const KiB = 1024;
const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-proc-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('/proc parsers', () => {
  it('status: the RSS split and the pid in each namespace', () => {
    expect(parseStatus(fixture('status'))).toEqual({
      rssBytes: 8912344 * KiB,
      anonBytes: 6291456 * KiB,
      fileBytes: 2097152 * KiB,
      shmemBytes: 523736 * KiB,
      nspid: [4242, 17],
    });
  });

  it('status of an old kernel without Rss* lines gives nulls, not zeros', () => {
    expect(parseStatus('Name:\tx\nVmRSS:\t  100 kB\n')).toEqual({ rssBytes: 100 * KiB, anonBytes: null, fileBytes: null, shmemBytes: null, nspid: null });
  });

  it('smaps: only the /dev/nvidia* mappings count as driver-mapped', () => {
    expect(parseSmapsDriverRss(fixture('smaps'))).toBe((65536 + 2048 + 1024) * KiB);
    expect(parseSmapsDriverRss('')).toBe(0);
  });

  it('cgroup: the container id of Kubernetes, Docker and Podman paths', () => {
    expect(parseCgroupContainerId(fixture('cgroup'))).toBe('5b1e9f3c7a2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7');
    const id = 'a'.repeat(64);
    expect(parseCgroupContainerId(`0::/system.slice/docker-${id}.scope\n`)).toBe(id);
    expect(parseCgroupContainerId(`12:memory:/docker/${id}\n`)).toBe(id);
    expect(parseCgroupContainerId(`0::/user.slice/libpod-${id}.scope/container\n`)).toBe(id);
    expect(parseCgroupContainerId('0::/user.slice/user-1000.slice/session-3.scope\n')).toBeNull();
  });

  it('stat: the start time, with a command holding spaces and parentheses', () => {
    expect(parseStatStartTime(fixture('stat'))).toBe(987654);
  });
});

describe('parseCgroupPodUid', () => {
  it('reads the pod UID of both cgroup drivers, and nothing outside a pod', () => {
    expect(parseCgroupPodUid('0::/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-00000000abcd/4f1e2d3c\n')).toBe('0a1b2c3d-0000-4000-8000-00000000abcd');
    expect(parseCgroupPodUid('0::/system.slice/docker-5b1e9f3c7a2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7.scope\n')).toBeNull();
  });
});

/** One process's host layer from a /proc tree, as readLayers makes it. */
const readHostLayer = async (pid: number, procRoot?: string) => hostLayerOf(await readProcessHost(pid, procRoot));

describe('readHostLayer', () => {
  it('reads a process from a /proc tree', async () => {
    const layer = await readHostLayer(4242, fixtures);
    expect(() => hostLayerSchema.parse(layer)).not.toThrow();
    expect(layer).toEqual({
      rssBytes: 8912344 * KiB,
      anonBytes: 6291456 * KiB,
      fileBytes: 2097152 * KiB,
      shmemBytes: 523736 * KiB,
      driverMappedBytes: (65536 + 2048 + 1024) * KiB,
      containerId: '5b1e9f3c7a2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7',
      // The systemd cgroup driver writes the pod UID with underscores.
      podUid: '3f2b9c1e-8d4a-4f7e-9b2c-1a5d6e7f8a9b',
      nspid: [4242, 17],
      startTimeTicks: 987654,
      errors: {},
    });
  });

  it('a process that is not there: nulls with PROCESS_NOT_VISIBLE', async () => {
    const layer = await readHostLayer(999999, fixtures);
    expect(layer.rssBytes).toBeNull();
    expect(layer.errors.host?.code).toBe('PROCESS_NOT_VISIBLE');
  });

  it('a file that vanished between reads leaves the rest', async () => {
    const proc = path.join(work, 'vanished');
    cpSync(fixtures, proc, { recursive: true });
    rmSync(path.join(proc, '4242', 'smaps'));
    const layer = await readHostLayer(4242, proc);
    expect(layer.driverMappedBytes).toBeNull();
    expect(layer.errors.driverMappedBytes?.code).toBe('PROCESS_NOT_VISIBLE');
    expect(layer.anonBytes).toBe(6291456 * KiB);
  });

  it('reads this very process from the real /proc', async () => {
    const layer = await readHostLayer(process.pid);
    expect(layer.rssBytes).toBeGreaterThan(1024 * KiB);
    expect(layer.anonBytes! + layer.fileBytes! + layer.shmemBytes!).toBe(layer.rssBytes);
    expect(layer.startTimeTicks).toBe(parseStatStartTime(readFileSync('/proc/self/stat', 'utf8')));
    expect(layer.nspid?.at(-1)).toBe(process.pid);
  });
});
