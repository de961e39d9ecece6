/**
 * scripts/gpu-check.sh --simulate: the real-GPU check's whole plumbing on this machine, against
 * the mock NVML (the workload runs its phases under the companion tests' fake torch with the real
 * companion, pynvml reads the mock). Keeps the script working between the rare sessions that have
 * a GPU. The host part (issue 16) runs on this machine's real glibc and cgroup: malloc_stats()
 * against mallinfo2() and the companion, the cgroup read by the check against the probe's
 * host.container; the cgroup reader and the malloc_stats() parser are also run on fixtures of
 * the other cgroup version and of totals past 4 GiB. The CUDA out-of-memory (issue 17) goes through
 * the fake torch's OOM trigger (the companion's real out-of-memory observer) while `gpu-layers
 * record --flight-dir` runs: the companion's file and snapshot of that moment, the flight and its
 * diagnosis come back and are checked; the OOM message parser and the allocator's rounding are
 * also run on a real torch message and on the rounding's edges.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
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

    // The CUDA out-of-memory (issue 17): every new check is there, and passed.
    for (const start of [
      'oom: the allocation of free + 1 GiB raised torch.cuda.OutOfMemoryError',
      'oom: companion oom.count = 1',
      'oom: companion oom.at within the failed allocation',
      "oom: the companion's file was written at the OOM",
      'oom: companion oom.requestedBytes = the request rounded as the allocator rounds',
      'oom: companion oom.device = 0',
      'oom: companion oom.deviceTotalBytes = torch.cuda.mem_get_info() total',
      'oom: companion oom.deviceFreeBytes = NVML free at the OOM (64 MiB)',
      "oom: the error message's figures = the companion's",
      "oom: probe allocator numOoms = 1 (torch's num_ooms)",
      "oom: probe allocator lastOom = the companion's oom",
      'oom: the companion wrote a memory snapshot (GPU_LAYERS_OOM_SNAPSHOT=1)',
      'oom: gpu-layers snapshot --json reads the OOM snapshot (exit 0)',
      "oom: the snapshot's reserved = the companion's reserved at the OOM",
      'flight: a cuda-oom recording of the workload in --flight-dir',
      'flight: gpu-layers diagnose reads the recording (exit 0 or 1)',
      "flight: diagnosis event kind cuda-oom, the workload's pid",
      'flight: the recording holds samples from before the OOM',
      'flight: diagnosis lists every process on that GPU (pynvml)',
    ]) {
      expect(named(start), start).toHaveLength(1);
      expect(named(start)[0].ok, JSON.stringify(named(start)[0])).toBe(true);
    }
    const pid: number = results.phases[0].torch.pid;
    const oom = results.oom;
    // What the workload asked for: the mock's free (less the H200's 5.6 MiB) + 1 GiB + 12,345 bytes,
    // so the allocator's rounding moves it: up to 2 MiB, as the observer reports it.
    const asked: number = oom.workload.oom.requestBytes;
    expect(asked).toBe(oom.nvml.freeBytes - 5832704 + 2 ** 30 + 12345);
    // The companion's file of that moment, as the workload copied it in its except clause.
    const atOom = JSON.parse(readFileSync(path.join(out, 'companion-oom.json'), 'utf8'));
    expect(atOom.pid).toBe(pid);
    expect(atOom.oom).toMatchObject({ count: 1, device: 0, deviceFreeBytes: oom.nvml.freeBytes - 5832704, snapshot: `${pid}.oom-1.pickle`, snapshotError: null });
    expect(atOom.oom.requestedBytes % (2 * MiB)).toBe(0);
    expect(atOom.oom.requestedBytes - asked).toBeGreaterThan(0);
    expect(atOom.oom.requestedBytes - asked).toBeLessThan(2 * MiB);
    expect(atOom.writtenAt).toBeGreaterThanOrEqual(atOom.oom.at);
    expect(atOom.devices[0].stats['num_ooms']).toBe(1);
    // The message the workload caught says the same figures, to two decimals.
    expect(oom.workload.oom.message).toMatch(/^CUDA out of memory\. Tried to allocate 74\.11 GiB\./);
    // The probe after the OOM: torch's count and the companion's record in the allocator layer.
    expect(oom.probeAllocator.numOoms).toBe(1);
    expect(oom.probeAllocator.lastOom).toMatchObject({ count: 1, requestedBytes: atOom.oom.requestedBytes, deviceFreeBytes: atOom.oom.deviceFreeBytes });
    // The snapshot came back gzipped: a pickle (protocol 4) that `gpu-layers snapshot` read as the
    // one 5 GiB segment the fake allocator held.
    const pickle = gunzipSync(readFileSync(path.join(out, 'snapshot-oom.pickle.gz')));
    expect([...pickle.subarray(0, 2)]).toEqual([0x80, 4]);
    expect(oom.snapshot.report).toMatchObject({ segmentCount: 1, reservedBytes: 5 * 2 ** 30 });
    // The flight: one recording of this pid's cuda-oom and its diagnosis, beside the whole recording.
    const flights = readdirSync(path.join(out, 'flights')).sort();
    const stem = new RegExp(`^flight-\\d{8}T\\d{6}Z-gpu0-pid${pid}-cuda-oom$`);
    expect(flights).toHaveLength(2);
    expect(flights[0]!.replace(/\.diagnosis\.json$/, '')).toMatch(stem);
    expect(flights[1]).toBe(flights[0]!.replace(/\.diagnosis\.json$/, '.jsonl'));
    expect(statSync(path.join(out, 'flights')).mode & 0o777).toBe(0o700);
    const diagnosis = JSON.parse(readFileSync(path.join(out, 'flights', flights[0]!), 'utf8'));
    expect(diagnosis).toMatchObject({ format: 'gpu-layers-flight', recording: flights[1], event: { kind: 'cuda-oom', pid, deviceIndex: 0 } });
    expect(diagnosis.event.processesOnGpu.map((p: { pid: number }) => p.pid)).toEqual([pid]);
    expect(diagnosis.event.processesOnGpu[0]).toMatchObject({ driverBytes: 6 * 2 ** 30, allocatorReservedBytes: 5 * 2 ** 30 });
    // Its recording: a header, then the samples up to the one that showed the OOM, the workload's
    // allocator count 0 before it and 1 in it; the same samples as the start of oom.jsonl.
    const lines = readFileSync(path.join(out, 'flights', flights[1]!), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.length).toBe(diagnosis.window.samples + 1);
    const counts = lines.slice(1).map((l: any) => l.devices[0].processes?.find((p: { pid: number }) => p.pid === pid)?.layers.allocator?.numOoms ?? null);
    expect(counts.at(-1)).toBe(1);
    expect(counts.slice(0, -1)).toContain(0);
    expect(counts.slice(0, -1).every((c: number | null) => c !== 1)).toBe(true);
    const recorded = readFileSync(path.join(out, 'oom.jsonl'), 'utf8').trim().split('\n');
    expect(recorded.slice(1, lines.length).map((l) => JSON.parse(l).takenAt)).toEqual(lines.slice(1).map((l: any) => l.takenAt));
    expect(oom.diagnose.exitCode).toBe(0);
    expect(oom.recordStderr).toContain('OUT OF MEMORY');
    // The report has the OOM section.
    expect(report.stdout).toContain('## The CUDA out-of-memory (last phase)');
    expect(report.stdout).toContain(`| request | ${atOom.oom.requestedBytes} | rounded by the allocator |`);
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

it("parses torch's out-of-memory message and rounds a request as the caching allocator does", () => {
  const script = [
    'import json',
    'import oom_check as o',
    // The message as PyTorch 2.1 to 2.11 words it (2.1 spelled "capacty"), another process on the GPU.
    'm = ("CUDA out of memory. Tried to allocate 112.50 GiB. GPU 0 has a total capacty of 139.80 GiB of which 111.25 GiB is free. "',
    '     "Process 4242 has 1.50 GiB memory in use. Including non-PyTorch memory, this process has 26.30 GiB memory in use. "',
    '     "Of the allocated memory 24.00 GiB is allocated by PyTorch, and 512.00 MiB is reserved by PyTorch but unallocated.")',
    'sizes = [1, 512, 513, 2 ** 20, 2 ** 20 + 1, 10 * 2 ** 20 - 1, 10 * 2 ** 20, 10 * 2 ** 20 + 1, 110 * 2 ** 30 + 12345]',
    'print(json.dumps({"figures": o.message_figures(m), "small": o.message_figures("Tried to allocate 20.00 MiB. of which 512 bytes is free"),',
    '                  "none": o.message_figures("not an OOM"), "sizes": [o.allocation_size(n) for n in sizes]}))',
  ].join('\n');
  const run = spawnSync(python, ['-c', script], { encoding: 'utf8', env: { ...process.env, PYTHONPATH: path.join(repoRoot, 'scripts/gpu-check') } });
  expect(run.status, run.stderr).toBe(0);
  const { figures, small, none, sizes } = JSON.parse(run.stdout);
  const GiB = 2 ** 30;
  // Each figure with the half-hundredth of its unit that format_size()'s two decimals allow.
  expect(figures.tried[0]).toBe(112.5 * GiB);
  expect(figures.total[0]).toBe(Math.round(139.8 * GiB));
  expect(figures.free[0]).toBe(111.25 * GiB);
  // "this process has", not the other process's line before it.
  expect(figures.process[0]).toBe(Math.round(26.3 * GiB));
  expect(figures.tried[1]).toBeGreaterThan(0.005 * GiB);
  expect(figures.tried[1]).toBeLessThan(0.006 * GiB);
  expect(small).toEqual({ tried: [20 * MiB, Math.floor(0.0051 * MiB) + 1], free: [512, 0] });
  expect(none).toEqual({});
  // 512 B blocks; up to 1 MiB a 2 MiB segment, below 10 MiB a 20 MiB one, then 2 MiB steps.
  expect(sizes).toEqual([2 * MiB, 2 * MiB, 2 * MiB, 2 * MiB, 20 * MiB, 10 * MiB, 10 * MiB, 12 * MiB, 110 * GiB + 2 * MiB]);
});
