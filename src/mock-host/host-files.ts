/**
 * The files of a fake host, the way a real host would show them: a /proc stand-in (command
 * lines, parents, start times, owners, memory split, the heap and anonymous mappings, driver
 * mappings, containers, the sockets the vLLM servers listen on), a cgroup v2 tree with the
 * containers' memory, the companion files (with malloc's figures where given) and the calibration
 * cache. gpu-layers then reads them with the same code as on a real host. FakeHost rewrites them
 * at every step.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { writeCalibrationCache } from '../sources/calibration-cache.js';
import type { FakeCgroupMemory, FakeMalloc, FakeProcess, FakeProcessHost } from './fake-host.js';
import type { Scenario } from './scenario-schema.js';

const MiB = 1024 * 1024;
/** A main thread's stack as smaps shows it, when the process gives none. */
const STACK_KB = 132;

function stat(p: FakeProcess): string {
  // Fields 4 (ppid) to 22 (start time) of /proc/<pid>/stat; the rest is not read.
  const comm = p.command.split(' ')[0]!.split('/').pop()!.slice(0, 15);
  return `${p.pid} (${comm}) S ${p.ppid} ${p.pid} ${p.pid} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 ${p.startTicks} 0 0\n`;
}

function status(p: FakeProcess): string {
  const uid = process.geteuid?.() ?? 0;
  const kb = (mib: number) => `${mib * 1024} kB`;
  const { anonMiB, shmemMiB, driverMappedMiB } = p.host;
  // Resident pages of /dev/nvidia* mappings are file-backed: the kernel counts them in RssFile.
  const fileMiB = p.host.fileMiB + driverMappedMiB;
  return [
    `Name:\t${p.command.split(' ')[0]}`,
    `Pid:\t${p.pid}`,
    `PPid:\t${p.ppid}`,
    `NSpid:\t${p.pid}${p.host.container !== null ? `\t${p.pid % 1000}` : ''}`,
    // Run by whoever lays the host out: the companion files written beside are that user's.
    `Uid:\t${uid}\t${uid}\t${uid}\t${uid}`,
    `VmRSS:\t${kb(anonMiB + fileMiB + shmemMiB)}`,
    `RssAnon:\t${kb(anonMiB)}`,
    `RssFile:\t${kb(fileMiB)}`,
    `RssShmem:\t${kb(shmemMiB)}`,
    '',
  ].join('\n');
}

/** malloc's arenas (the brk heap and the threads' heaps): what it took from the system besides its mmapped chunks. */
function arenaMiB(malloc: FakeMalloc): number {
  return Math.max(0, malloc.inUseMiB - malloc.mmappedMiB + malloc.freeMiB);
}

function mmappedChunks(malloc: FakeMalloc): number {
  return malloc.mmappedChunks ?? (malloc.mmappedMiB > 0 ? Math.max(1, Math.round(malloc.mmappedMiB / 8)) : 0);
}

/**
 * The process's anonymous memory in kB, split as smaps shows it: the brk heap, the unnamed
 * anonymous mappings (one entry each) and the stack, adding up to anonMiB exactly.
 */
function anonymousSplitKb(host: FakeProcessHost): { heap: number; mappings: number[]; stack: number } {
  const total = Math.max(0, Math.round(host.anonMiB * 1024));
  const stack = Math.min(total, host.stackMiB === undefined ? STACK_KB : Math.round(host.stackMiB * 1024));
  const malloc = host.malloc;
  const heapMiB = host.heapMiB ?? (malloc === undefined ? host.anonMiB / 4 : (malloc.arenas ?? 1) > 1 ? arenaMiB(malloc) / 2 : arenaMiB(malloc));
  const heap = Math.max(0, Math.min(total - stack, Math.round(heapMiB * 1024)));
  const rest = total - stack - heap;
  const count = Math.max(1, host.anonMappings ?? 1 + (malloc === undefined ? 0 : Math.max(0, (malloc.arenas ?? 1) - 1) + mmappedChunks(malloc)));
  // Whole pages each; the first mapping takes what does not divide evenly.
  const each = Math.floor(rest / count / 4) * 4;
  const mappings = Array.from({ length: count }, (_, i) => (i === 0 ? rest - each * (count - 1) : each));
  return { heap, mappings, stack };
}

/** One smaps entry: the header and the lines gpu-layers reads (Size and Rss, Anonymous). */
function mapping(start: number, rssKb: number, anonKb: number, perms: string, name: string): { text: string; end: number } {
  // Mapped at least as large as resident, in whole 2 MiB steps, with a page to spare.
  const sizeKb = Math.ceil((rssKb + 4) / 2048) * 2048;
  const end = start + sizeKb * 1024;
  const header = `${start.toString(16)}-${end.toString(16)} ${perms} 00000000 ${name.startsWith('/dev/') ? '00:05 1024' : '00:00 0'}`;
  return {
    text: [name === '' ? header : `${header.padEnd(73)}${name}`, `Size:           ${sizeKb} kB`, `Rss:            ${rssKb} kB`, `Anonymous:      ${anonKb} kB`].join('\n'),
    end,
  };
}

function smaps(p: FakeProcess): string {
  const split = anonymousSplitKb(p.host);
  const entries: string[] = [];
  // The heap sits above the executable, the mappings below the stack, as Linux lays them out.
  entries.push(mapping(0x55d4c0a00000, split.heap, split.heap, 'rw-p', '[heap]').text);
  let at = 0x7f2a00000000;
  for (const kb of split.mappings) {
    const entry = mapping(at, kb, kb, 'rw-p', '');
    entries.push(entry.text);
    at = entry.end;
  }
  entries.push(mapping(at + 0x40000000, p.host.driverMappedMiB * 1024, 0, 'rw-s', '/dev/nvidiactl').text);
  entries.push(mapping(0x7ffc8e000000, split.stack, split.stack, 'rw-p', '[stack]').text);
  return entries.join('\n') + '\n';
}

/**
 * The cgroup path /proc/<pid>/cgroup names (v2): a pod's container (in its pod's slice, as the
 * kubelet's systemd driver names it, where the pod UID is given), else a login session.
 */
function cgroupPathOf(p: FakeProcess): string {
  if (p.host.container === null) return '/user.slice/user-1000.slice/session-4.scope';
  const pod = p.host.podUid === undefined ? '' : `kubepods-burstable-pod${p.host.podUid.replace(/-/g, '_')}.slice/`;
  return `/kubepods.slice/kubepods-burstable.slice/${pod}cri-containerd-${p.host.container}.scope`;
}

function cgroup(p: FakeProcess): string {
  return `0::${cgroupPathOf(p)}\n`;
}

/**
 * /proc stand-in for `processes` (replacing what `root` held); `listening` maps a server's pid to
 * the loopback port it listens on.
 */
export function writeProcStandIn(root: string, processes: readonly FakeProcess[], listening: ReadonlyMap<number, number>): void {
  rmSync(root, { recursive: true, force: true });
  let inode = 4_000_000;
  const tcp = ['  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode'];
  for (const p of processes) {
    const dir = path.join(root, String(p.pid));
    mkdirSync(path.join(dir, 'fd'), { recursive: true });
    writeFileSync(path.join(dir, 'cmdline'), p.command.split(' ').join('\0') + '\0');
    writeFileSync(path.join(dir, 'stat'), stat(p));
    writeFileSync(path.join(dir, 'status'), status(p));
    writeFileSync(path.join(dir, 'smaps'), smaps(p));
    writeFileSync(path.join(dir, 'cgroup'), cgroup(p));
    const port = listening.get(p.pid);
    if (port !== undefined) {
      inode++;
      symlinkSync(`socket:[${inode}]`, path.join(dir, 'fd', '12'));
      const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
      tcp.push(`   ${tcp.length - 1}: ${local} 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 ${inode} 1 0000000000000000 100 0 0 10 0`);
    }
  }
  mkdirSync(path.join(root, 'net'), { recursive: true });
  writeFileSync(path.join(root, 'net', 'tcp'), tcp.join('\n') + '\n');
}

const bytesOf = (mib: number): number => Math.round(mib * MiB);

/** The companion file's `host` part, as the companion writes it from mallinfo2() and sys. */
function companionHost(malloc: FakeMalloc, python: FakeProcessHost['python']) {
  return {
    malloc: {
      source: 'mallinfo2',
      arenaBytes: bytesOf(arenaMiB(malloc)),
      inUseBytes: bytesOf(malloc.inUseMiB),
      freeBytes: bytesOf(malloc.freeMiB),
      mmappedBytes: bytesOf(malloc.mmappedMiB),
      mmappedChunks: mmappedChunks(malloc),
      releasableBytes: bytesOf(malloc.releasableMiB ?? malloc.freeMiB / 10),
      // null stays null: the companion did not count the arenas.
      arenaCount: malloc.arenas === undefined ? 1 : malloc.arenas,
    },
    mallocUnknownBecause: null,
    python: python === undefined ? null : { allocatedBlocks: python.allocatedBlocks, tracedBytes: python.tracedMiB == null ? null : bytesOf(python.tracedMiB) },
  };
}

/** The cgroup files' figures in bytes, summed over a folder and the folders below it (v2 counts hierarchically). */
interface CgroupFigures {
  usage: number;
  anon: number;
  shmem: number;
  inactiveFile: number;
  oom: number;
  oomKill: number;
}

function memoryStat(f: CgroupFigures): string {
  // What usage holds besides anonymous and shared memory is page cache (and ~1% kernel memory).
  const kernel = Math.min(Math.max(0, f.usage - f.anon - f.shmem - f.inactiveFile), Math.round(f.usage / 100 / 4096) * 4096);
  const file = Math.max(f.inactiveFile, f.usage - f.anon - kernel);
  const activeAnon = Math.round((f.anon * 0.9) / 4096) * 4096;
  return [
    `anon ${f.anon}`,
    `file ${file}`,
    `kernel ${kernel}`,
    `shmem ${f.shmem}`,
    `inactive_anon ${f.anon - activeAnon + f.shmem}`,
    `active_anon ${activeAnon}`,
    `inactive_file ${f.inactiveFile}`,
    `active_file ${Math.max(0, file - f.shmem - f.inactiveFile)}`,
    'unevictable 0',
    '',
  ].join('\n');
}

function memoryEvents(f: CgroupFigures): string {
  return ['low 0', 'high 0', `max ${f.oom}`, `oom ${f.oom}`, `oom_kill ${f.oomKill}`, 'oom_group_kill 0', ''].join('\n');
}

/**
 * The cgroup v2 stand-in for `processes` (replacing what `root` held): for each cgroup a process
 * gives figures for, memory.current, memory.max, memory.stat and memory.events at the path its
 * /proc/<pid>/cgroup names, and the same files in the folders above it (no limit, figures summed,
 * as the kernel counts them) but not at the root, which has none.
 */
export function writeCgroupStandIn(root: string, processes: readonly FakeProcess[]): void {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  const leaves = new Map<string, { memory: FakeCgroupMemory; members: FakeProcess[] }>();
  for (const p of processes) {
    const at = cgroupPathOf(p);
    if (p.host.cgroup !== undefined && !leaves.has(at)) leaves.set(at, { memory: p.host.cgroup, members: [] });
  }
  // Members that give no figures still count in their cgroup's anonymous and shared memory.
  for (const p of processes) leaves.get(cgroupPathOf(p))?.members.push(p);
  const folders = new Map<string, CgroupFigures>();
  for (const [at, { memory, members }] of leaves) {
    const usage = bytesOf(memory.usageMiB);
    const figures: CgroupFigures = {
      usage,
      anon: Math.min(usage, bytesOf(members.reduce((sum, p) => sum + p.host.anonMiB, 0))),
      shmem: bytesOf(members.reduce((sum, p) => sum + p.host.shmemMiB, 0)),
      inactiveFile: Math.min(usage, bytesOf(memory.inactiveFileMiB ?? 0)),
      oom: memory.oomEvents ?? 0,
      oomKill: memory.oomKills ?? 0,
    };
    const dir = path.join(root, at);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'memory.current'), `${usage}\n`);
    writeFileSync(path.join(dir, 'memory.max'), memory.limitMiB === null ? 'max\n' : `${bytesOf(memory.limitMiB)}\n`);
    writeFileSync(path.join(dir, 'memory.stat'), memoryStat(figures));
    writeFileSync(path.join(dir, 'memory.events'), memoryEvents(figures));
    const parts = at.split('/').filter((part) => part !== '');
    for (let depth = 1; depth < parts.length; depth++) {
      const above = '/' + parts.slice(0, depth).join('/');
      const sum = folders.get(above) ?? { usage: 0, anon: 0, shmem: 0, inactiveFile: 0, oom: 0, oomKill: 0 };
      for (const key of Object.keys(sum) as (keyof CgroupFigures)[]) sum[key] += figures[key];
      folders.set(above, sum);
    }
  }
  for (const [above, figures] of folders) {
    const dir = path.join(root, above);
    mkdirSync(dir, { recursive: true });
    writeFileSync(path.join(dir, 'memory.current'), `${figures.usage}\n`);
    writeFileSync(path.join(dir, 'memory.max'), 'max\n');
    writeFileSync(path.join(dir, 'memory.stat'), memoryStat(figures));
    writeFileSync(path.join(dir, 'memory.events'), memoryEvents(figures));
  }
}

/**
 * What the companion would have written in each PyTorch process, a moment before `nowMs`: the
 * allocator's figures and, where the process gives malloc's, the `host` part.
 */
export function writeCompanionFiles(dir: string, processes: readonly FakeProcess[], gpuUuids: readonly string[], nowMs: number): void {
  mkdirSync(dir, { recursive: true });
  for (const p of processes) {
    if (p.allocator === null || p.gpu === null) continue;
    const a = p.allocator;
    const stats: Record<string, number> = {
      'reserved_bytes.all.current': a.reservedMiB * MiB,
      'allocated_bytes.all.current': a.allocatedMiB * MiB,
      'active_bytes.all.current': a.allocatedMiB * MiB,
      'inactive_split_bytes.all.current': a.inactiveSplitMiB * MiB,
      'requested_bytes.all.current': a.allocatedMiB * MiB - 3 * MiB,
      num_alloc_retries: a.retries,
      num_ooms: a.ooms ?? 0,
    };
    const document = {
      format: 'gpu-layers-companion',
      version: 1,
      pid: p.pid,
      startTimeTicks: p.startTicks,
      writtenAt: nowMs / 1000 - 0.7,
      intervalSeconds: 2,
      torchVersion: '2.8.0+cu128',
      devices: [
        {
          index: 0,
          uuid: gpuUuids[p.gpu]!.slice(4),
          name: 'NVIDIA H100 80GB HBM3',
          stats,
          privatePoolBytes: a.privatePoolMiB * MiB,
          ...(a.largestFreeMiB !== undefined ? { largestFreeBlockBytes: a.largestFreeMiB * MiB } : {}),
        },
      ],
      ...(p.host.malloc !== undefined ? { host: companionHost(p.host.malloc, p.host.python) } : {}),
      errors: [],
    };
    writeFileSync(path.join(dir, `${p.pid}.json`), JSON.stringify(document));
  }
}

/**
 * As if `gpu-layers calibrate` had run on this host: each scenario device with a UUID that says
 * what a bare context costs on it has an entry for the scenario's driver.
 */
export function writeCalibrationFor(cacheFile: string, scenario: Scenario, moduleLoading: string): void {
  const driverVersion = scenario.driverVersion;
  writeCalibrationCache(
    cacheFile,
    scenario.devices.flatMap((device) =>
      driverVersion === undefined || device.uuid === undefined || typeof device.contextBytes !== 'number'
        ? []
        : [{ uuid: device.uuid, name: device.name ?? null, driverVersion, moduleLoading, contextBytes: device.contextBytes, measuredAt: '2026-11-26T07:50:00.000Z' }],
    ),
  );
}
