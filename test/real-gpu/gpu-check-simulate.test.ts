/**
 * scripts/gpu-check.sh --simulate: the real-GPU check's whole plumbing on this machine, against
 * the mock NVML (the workload runs its phases under the companion tests' fake torch with the real
 * companion, pynvml reads the mock). Keeps the script working between the rare sessions that have
 * a GPU. The host part (issue 16) runs on this machine's real glibc and cgroup: malloc_stats()
 * against mallinfo2() and the companion, the cgroup read by the check against the probe's
 * host.container; the cgroup reader and the malloc_stats() parser are also run on fixtures of
 * the other cgroup version and of totals past 4 GiB.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { expect, it } from 'vitest';

import { python, repoRoot } from '../helpers/paths.js';

interface Check {
  check: string;
  ok: boolean;
  expected: unknown;
  seen: unknown;
  note: string;
}

const MiB = 2 ** 20;
// This machine's memory cgroup version, as the kernel lists it for this process.
const cgroupVersion = readFileSync('/proc/self/cgroup', 'utf8')
  .split('\n')
  .some((line) => line.split(':')[1]?.split(',').includes('memory'))
  ? 1
  : 2;

it('runs every phase, check and timing against the mock and writes its results', { timeout: 120_000 }, () => {
  const out = mkdtempSync(path.join(tmpdir(), 'gpu-check-'));
  try {
    const run = spawnSync('bash', [path.join(repoRoot, 'scripts/gpu-check.sh'), out, '--simulate'], { encoding: 'utf8', timeout: 110_000 });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    const results = JSON.parse(readFileSync(path.join(out, 'results.json'), 'utf8'));
    expect(results.errors).toEqual([]);
    expect(results.phases.map((p: { phase: string }) => p.phase)).toEqual(['init', 'weights', 'kv', 'graphs', 'churn', 'graphs2']);
    // The mock lists the workload with 1 GiB more at each phase; pynvml and the probe agree.
    expect(results.phases.map((p: any) => p.probe.layers.driverBytes)).toEqual([1, 2, 3, 4, 5, 6].map((n) => n * 2 ** 30));
    // The companion runs under the fake torch: the probe's allocator layer is what the workload published.
    expect(results.phases.map((p: any) => p.probe.layers.allocator?.reservedBytes)).toEqual([0, 1, 2, 3, 4, 5].map((n) => n * 2 ** 30));
    expect(results.checks.length).toBeGreaterThanOrEqual(8);
    expect(results.checks.filter((c: { ok: boolean }) => !c.ok)).toEqual([]);
    expect(results.timings.probeJsonProcess.runsMs).toHaveLength(10);
    expect(existsSync(path.join(out, 'probe-final.json'))).toBe(true);

    // The host: the new checks are there, and passed.
    const named = (start: string) => results.checks.filter((c: Check) => c.check.startsWith(start));
    for (const start of [
      'malloc_stats: a positive in-use total',
      'malloc_stats total in use = mallinfo2',
      'malloc_stats total system = mallinfo2',
      'malloc_stats: total - arenas = mallinfo2 hblkhd',
      'companion malloc.inUseBytes = malloc_stats total in use',
      'companion arenaBytes + mmappedBytes = malloc_stats total system',
      `cgroup: version and path = /proc/PID/cgroup (v${cgroupVersion})`,
      'cgroup: usage within',
      'cgroup: working set (usage - inactive_file) within',
      'cgroup: limit =',
      'cgroup: oom_kill count equal',
      'cgroup: oom event count equal',
    ]) {
      expect(named(start), start).toHaveLength(1);
      expect(named(start)[0].ok, JSON.stringify(named(start)[0])).toBe(true);
    }
    // malloc_stats() as the workload captured it: a positive in-use total that mallinfo2() at the
    // same moment agrees with, and that holds the 8 MiB mmapped block and the 9 MiB of 3 KiB
    // blocks the simulated workload keeps (so the mmapped chunks are in the total).
    const stats = JSON.parse(readFileSync(path.join(out, 'malloc-stats.json'), 'utf8'));
    expect(stats.text).toContain('Total (incl. mmap):');
    const total = stats.mallocStats.total;
    expect(total.inUseBytes).toBeGreaterThan(17 * MiB);
    expect(total.systemBytes).toBeGreaterThanOrEqual(total.inUseBytes);
    expect(stats.mallocStats.arenas.length).toBeGreaterThanOrEqual(1);
    expect(Math.abs(total.inUseBytes - (stats.mallinfo2.uordblks + stats.mallinfo2.hblkhd))).toBeLessThanOrEqual(64 * 1024);
    expect(stats.mallinfo2.hblkhd).toBeGreaterThanOrEqual(8 * MiB);
    // The companion's file written after it, its figures within the tolerance of malloc_stats's.
    const host = results.host;
    expect(host.companion.readApartSeconds).toBeGreaterThan(0);
    expect(host.companion.readApartSeconds).toBeLessThan(2);
    expect(Math.abs(host.companion.companion.malloc.inUseBytes - total.inUseBytes)).toBeLessThanOrEqual(host.companion.toleranceBytes);
    // ...a tolerance the mmapped chunks exceed: leaving them out of either figure would fail the check.
    expect(stats.mallinfo2.hblkhd).toBeGreaterThan(host.companion.toleranceBytes);
    // The cgroup as read here: this machine's version, a usage, and the probe's within the range.
    expect(host.cgroup.before.version).toBe(cgroupVersion);
    expect(host.cgroup.before.usageBytes).toBeGreaterThan(0);
    expect(host.cgroup.probe.usageBytes).toBeGreaterThan(0);
    expect(host.cgroup.probe.workingSetBytes).toBeLessThanOrEqual(host.cgroup.probe.usageBytes);
    // The probe's host layer recorded: heap, anonymous mappings, outside malloc, RSS against malloc.
    const layer = host.layer;
    expect(layer.heapBytes).toBeGreaterThan(0);
    expect(layer.anonMappingsBytes).toBeGreaterThanOrEqual(8 * MiB);
    expect(layer.outsideMallocBytes).toBe(layer.anonBytes - layer.mallocArenaPlusMmappedBytes);
    expect(layer.rssMinusMallocInUseBytes).toBe(layer.rssBytes - layer.mallocInUseBytes);

    // The validation report has the host section.
    const report = spawnSync(python, [path.join(repoRoot, 'scripts/gpu-check/validation_report.py'), path.join(out, 'results.json'), 'simulated'], { encoding: 'utf8' });
    expect(report.status, report.stderr).toBe(0);
    expect(report.stdout).toContain('## The host at phase churn');
    expect(report.stdout).toContain(`| in use | ${total.inUseBytes} | `);
    expect(report.stdout).toContain(`| usage | ${host.cgroup.before.usageBytes} | ${host.cgroup.probe.usageBytes} | `);
    expect(report.stdout).toContain('| outsideMallocBytes |');
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

it("reads cgroup v2 (and v1 on a hybrid host, and a container's own mount) and malloc_stats() totals past 4 GiB", () => {
  const work = mkdtempSync(path.join(tmpdir(), 'gpu-check-host-'));
  try {
    const write = (file: string, text: string) => {
      mkdirSync(path.dirname(path.join(work, file)), { recursive: true });
      writeFileSync(path.join(work, file), text);
    };
    write('proc/100/cgroup', '0::/system.slice/vllm.service\n');
    write('proc/101/cgroup', '0::/docker/abc\n');
    write('proc/102/cgroup', '12:memory:/a\n1:name=systemd:/a\n0::/\n');
    write('proc/103/cgroup', '0::/../other\n');
    write(
      'mountinfo',
      [
        `30 25 0:26 / ${work}/v2 rw,nosuid - cgroup2 cgroup2 rw`,
        `31 25 0:27 /docker/abc ${work}/inside rw - cgroup2 cgroup2 rw`,
        `32 25 0:28 / ${work}/v1mem rw - cgroup cgroup rw,memory`,
        '',
      ].join('\n'),
    );
    const v2 = (dir: string, current: number) => {
      write(`${dir}/memory.current`, `${current}\n`);
      write(`${dir}/memory.max`, 'max\n');
      write(`${dir}/memory.stat`, 'anon 1000\nfile 5000\ninactive_file 4000\n');
      write(`${dir}/memory.events`, 'low 0\nhigh 0\nmax 7\noom 2\noom_kill 1\n');
    };
    v2('v2/system.slice/vllm.service', 123456789);
    v2('inside', 5000);
    write('v1mem/a/memory.usage_in_bytes', '777000\n');
    write('v1mem/a/memory.limit_in_bytes', '9223372036854771712\n');
    write('v1mem/a/memory.stat', 'cache 10\ninactive_file 99\ntotal_inactive_file 7000\n');
    write('v1mem/a/memory.oom_control', 'oom_kill_disable 0\nunder_oom 0\noom_kill 3\n');
    const script = [
      'import json, sys',
      'import host_memory as h',
      'w = sys.argv[1]',
      'cgroups = [h.read_cgroup(pid, w + "/proc", w + "/mountinfo") for pid in (100, 101, 102, 103)]',
      // A 5 GiB heap: the printed totals wrap at 2^32; another thread's line in between is skipped.
      'G = 2 ** 30',
      'text = "Arena 0:\\nsystem bytes     = %d\\nin use bytes     = %d\\nsome other thread wrote this\\nTotal (incl. mmap):\\nsystem bytes     = %d\\nin use bytes     = %d\\nmax mmap regions =  3\\nmax mmap bytes   =  99\\n" % (',
      '    G, G // 2, (G + 5 * G) % 2 ** 32, (G // 2 + 5 * G) % 2 ** 32)',
      'parsed = h.parse_malloc_stats(text)',
      'info = dict.fromkeys(h.MALLINFO2_FIELDS, 0); info.update(arena=G, uordblks=G // 2, hblkhd=5 * G, hblks=2)',
      'print(json.dumps({"cgroups": cgroups, "parsed": parsed, "same": h.same_moment(parsed, info)}))',
    ].join('\n');
    const run = spawnSync(python, ['-c', script, work], {
      encoding: 'utf8',
      env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'scripts/gpu-check') },
    });
    expect(run.status, run.stderr).toBe(0);
    const { cgroups, parsed, same } = JSON.parse(run.stdout);
    expect(cgroups[0]).toMatchObject({
      version: 2,
      path: '/system.slice/vllm.service',
      folder: `${work}/v2/system.slice/vllm.service`,
      usageBytes: 123456789,
      limitBytes: null,
      inactiveFileBytes: 4000,
      workingSetBytes: 123456789 - 4000,
      oomEvents: 2,
      oomKills: 1,
    });
    // Without a cgroup namespace, a container's mount of its own cgroup has that cgroup as its root.
    expect(cgroups[1]).toMatchObject({ version: 2, folder: `${work}/inside`, usageBytes: 5000, workingSetBytes: 1000 });
    // Hybrid: the memory controller's v1 line wins over 0::/; v1's "no limit" is null, no OOM event count.
    expect(cgroups[2]).toMatchObject({ version: 1, path: '/a', usageBytes: 777000, limitBytes: null, workingSetBytes: 770000, oomEvents: null, oomKills: 3 });
    expect(cgroups[3].error).toContain('outside this cgroup namespace');
    expect(parsed.arenas).toEqual([{ systemBytes: 2 ** 30, inUseBytes: 2 ** 29 }]);
    expect(parsed.maxMmapRegions).toBe(3);
    expect(same).toEqual({ inUseDifference: 0, systemDifference: 0, mmappedFromTotals: { inUse: (5 * 2 ** 30) % 2 ** 32, system: (5 * 2 ** 30) % 2 ** 32 }, wrapped: true });
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
