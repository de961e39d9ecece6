/**
 * The files of a fake host, the way a real host would show them: a /proc stand-in (command
 * lines, parents, start times, owners, memory split, driver mappings, containers, the sockets the
 * vLLM servers listen on), the companion files and the calibration cache. gpu-layers then reads
 * them with the same code as on a real host. FakeHost rewrites them at every step.
 */
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { writeCalibrationCache } from '../sources/calibration-cache.js';
import type { FakeProcess } from './fake-host.js';
import type { Scenario } from './scenario-schema.js';

const MiB = 1024 * 1024;

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

function smaps(p: FakeProcess): string {
  return [
    '7f2a40000000-7f2a80000000 rw-s 00000000 00:05 1024                       /dev/nvidiactl',
    `Rss:            ${p.host.driverMappedMiB * 1024} kB`,
    '7f2a80000000-7f2aa0000000 rw-p 00000000 00:00 0',
    `Rss:            ${p.host.anonMiB * 1024} kB`,
    '',
  ].join('\n');
}

function cgroup(p: FakeProcess): string {
  return p.host.container === null
    ? '0::/user.slice/user-1000.slice/session-4.scope\n'
    : `0::/kubepods.slice/kubepods-burstable.slice/cri-containerd-${p.host.container}.scope\n`;
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

/** What the companion would have written in each PyTorch process, a moment before `nowMs`. */
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
