/** The host layer from /proc: parsers on fixtures, the reader on a fake /proc and on the real one. */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

import { hostLayerSchema } from '../../src/layers/schema.js';
import { hostLayerOf } from '../../src/layers/host-layer.js';
import { readProcessHost } from '../../src/sources/process-host.js';
import { parseCgroupContainerId, parseCgroupPodUid, parseSmapsDriverRss, parseSmapsSplit, parseStatStartTime, parseStatus } from '../../src/sources/proc-files.js';

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

describe('parseSmapsSplit', () => {
  it('the hand-made fixture: driver Rss, one unnamed anonymous mapping and the stack', () => {
    // test/fixtures/proc/4242/smaps: three /dev/nvidia* mappings, a file mapping, an unnamed 2048 kB one, [stack] 44 kB.
    expect(parseSmapsSplit(fixture('smaps'))).toEqual({
      driverMappedBytes: (65536 + 2048 + 1024) * KiB,
      heapBytes: 0,
      anonMappingsBytes: 2048 * KiB,
      anonMappingsCount: 1,
      stackBytes: 44 * KiB,
    });
    expect(parseSmapsSplit('')).toEqual({ driverMappedBytes: 0, heapBytes: 0, anonMappingsBytes: 0, anonMappingsCount: 0, stackBytes: 0 });
  });

  it('names: [anon:NAME] is an anonymous mapping; file COW pages, shared anonymous memory and [vdso] are in no bucket', () => {
    const block = (header: string, rss: number, anonymous: number) => `${header}\nSize:   ${rss} kB\nRss:    ${rss} kB\nAnonymous:  ${anonymous} kB\nVmFlags: rd wr mr mw me ac sd\n`;
    const text = [
      block('55d5c8a00000-55d5c8b00000 rw-p 00000000 00:00 0                          [heap]', 1000, 1000),
      block('7f0000000000-7f0000100000 rw-p 00000000 00:00 0                          [anon:pymalloc arena]', 300, 300),
      block('7f0000100000-7f0000200000 ---p 00000000 00:00 0 ', 0, 0),
      block('7f0000200000-7f0000300000 rw-p 00001000 fd:01 42                         /opt/my lib/libx.so (deleted)', 50, 7),
      block('7f0000300000-7f0000400000 rw-s 00000000 00:01 18670                      /dev/zero (deleted)', 400, 0),
      block('7f0000400000-7f0000500000 rw-s 00000000 00:05 1030                       /dev/nvidia-uvm (deleted)', 64, 0),
      block('7f0000500000-7f0000600000 r-xp 00000000 00:00 0                          [vdso]', 4, 0),
      block('7ffd1a3c2000-7ffd1a3e3000 rw-p 00000000 00:00 0                          [stack]', 44, 44),
    ].join('');
    expect(parseSmapsSplit(text)).toEqual({ driverMappedBytes: 64 * KiB, heapBytes: 1000 * KiB, anonMappingsBytes: 300 * KiB, anonMappingsCount: 2, stackBytes: 44 * KiB });
  });

  it('a figure too large to be true makes the whole file untrusted', () => {
    const text = '7f00-7f01 rw-p 00000000 00:00 0 \nAnonymous:  18446744073709551615 kB\n7f01-7f02 rw-s 00000000 00:05 1 /dev/nvidia0\nRss:  4 kB\n';
    expect(parseSmapsSplit(text)).toBeNull();
    expect(parseSmapsDriverRss(text)).toBeNull();
  });

  describe('a real Python process (test/fixtures/proc/smaps-python-threads, see its README)', () => {
    const file = path.join(fixtures, 'smaps-python-threads', 'smaps');
    const split = parseSmapsSplit(readFileSync(file, 'utf8'))!;
    // What capture.py made and printed (kB): the brk heap it wrote, the thread arenas glibc's
    // malloc_info counted, and the anonymous memory it wrote outside the heap.
    const HEAP_WRITTEN = 1024 * 96;
    const THREAD_ARENAS = 4;
    const THREADS_WRITTEN = 4 * 128 * 64;
    const MMAPPED_CHUNK = 48 * 1024;
    const PRIVATE_MMAP = 64 * 1024;
    const SHARED_MMAP = 16 * 1024;

    it('finds the heap, the mmaps and the thread arenas', () => {
      expect(split.heapBytes).toBeGreaterThanOrEqual(HEAP_WRITTEN * KiB);
      expect(split.anonMappingsBytes).toBeGreaterThanOrEqual((PRIVATE_MMAP + MMAPPED_CHUNK + THREADS_WRITTEN) * KiB);
      // Every arena is a mapping (rw-p as far as used, ---p beyond), and so are the two mmaps.
      expect(split.anonMappingsCount).toBeGreaterThanOrEqual(THREAD_ARENAS + 2);
      expect(split.driverMappedBytes).toBe(0);
      expect(split.stackBytes).toBeGreaterThan(0);
      // The shared mmap is shmem: even all the rest of the anonymous mappings' pages together
      // are less than the private mmap, the chunk, the threads' writes and the shared mmap.
      expect(split.anonMappingsBytes).toBeLessThan((PRIVATE_MMAP + MMAPPED_CHUNK + THREADS_WRITTEN + SHARED_MMAP) * KiB);
    });

    it('equals an independent awk reading of the same file, and the buckets leave out only file mappings', () => {
      const program = `
        $1 ~ /^[0-9a-f]+-[0-9a-f]+$/ {
          path = ""; for (i = 6; i <= NF; i++) path = path (i > 6 ? " " : "") $i
          if (path == "" || path ~ /^\\[anon:/) { kind = "anon"; count++ }
          else if (path == "[heap]") kind = "heap"
          else if (path ~ /^\\[stack/) kind = "stack"
          else if (path ~ /^\\/dev\\/nvidia/) kind = "driver"
          else if (path ~ /^\\//) kind = "file"
          else kind = "special"
          next
        }
        /^Rss:/ && kind == "driver" { driver += $2 }
        /^Anonymous:/ { sum[kind] += $2; total += $2 }
        END { printf "%d %d %d %d %d %d %d\\n", driver, sum["heap"], sum["anon"], count, sum["stack"], sum["file"], total }`;
      const [driver, heap, anon, count, stack, fileCow, total] = execFileSync('awk', [program, file], { encoding: 'utf8' }).trim().split(' ').map(Number);
      expect(split).toEqual({ driverMappedBytes: driver! * KiB, heapBytes: heap! * KiB, anonMappingsBytes: anon! * KiB, anonMappingsCount: count!, stackBytes: stack! * KiB });
      expect(fileCow).toBeGreaterThan(0);
      expect((heap! + anon! + stack! + fileCow!) * KiB).toBe(total! * KiB);
    });
  });
});

describe('parseCgroupPodUid', () => {
  it('reads the pod UID of both cgroup drivers, and nothing outside a pod', () => {
    expect(parseCgroupPodUid('0::/kubepods/burstable/pod0a1b2c3d-0000-4000-8000-00000000abcd/4f1e2d3c\n')).toBe('0a1b2c3d-0000-4000-8000-00000000abcd');
    expect(parseCgroupPodUid('0::/system.slice/docker-5b1e9f3c7a2d4e6f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7.scope\n')).toBeNull();
  });
});

/** One process's host layer from a /proc tree (and a cgroup tree), as readLayers makes it. */
const readHostLayer = async (pid: number, procRoot?: string, cgroupRoot?: string) => hostLayerOf(await readProcessHost(pid, procRoot, cgroupRoot));
const cgroupFixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/cgroup/v2');

describe('readHostLayer', () => {
  it('reads a process from a /proc tree and its cgroup from a cgroup tree', async () => {
    const layer = await readHostLayer(4242, fixtures, cgroupFixtures);
    expect(() => hostLayerSchema.parse(layer)).not.toThrow();
    // The cgroup's files, read here on their own: memory.current, memory.max, memory.events and
    // memory.stat's inactive_file.
    const cgroupPath = readFileSync(path.join(fixtures, '4242', 'cgroup'), 'utf8').trim().slice('0::'.length);
    const file = (name: string) => readFileSync(path.join(cgroupFixtures, cgroupPath, name), 'utf8');
    const usage = Number(file('memory.current').trim());
    const inactiveFile = Number(/^inactive_file (\d+)$/m.exec(file('memory.stat'))![1]);
    expect(layer).toEqual({
      rssBytes: 8912344 * KiB,
      anonBytes: 6291456 * KiB,
      fileBytes: 2097152 * KiB,
      shmemBytes: 523736 * KiB,
      driverMappedBytes: (65536 + 2048 + 1024) * KiB,
      // smaps: no [heap]; one unnamed private mapping with 2048 kB anonymous; [stack] apart.
      heapBytes: 0,
      anonMappingsBytes: 2048 * KiB,
      anonMappingsCount: 1,
      malloc: null,
      python: null,
      outsideMallocBytes: null,
      container: {
        cgroupVersion: 2,
        path: cgroupPath,
        usageBytes: usage,
        workingSetBytes: usage - inactiveFile,
        limitBytes: Number(file('memory.max').trim()),
        oomEvents: Number(/^oom (\d+)$/m.exec(file('memory.events'))![1]),
        oomKills: Number(/^oom_kill (\d+)$/m.exec(file('memory.events'))![1]),
        errors: {},
      },
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
