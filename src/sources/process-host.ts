/**
 * What /proc says of a GPU process on the host: its RSS split into anonymous, file-backed, shmem
 * and the NVIDIA driver's mappings, its anonymous memory split into the brk heap and anonymous
 * mappings (/proc/<pid>/smaps), its cgroup's memory (usage, working set, limit, OOM kills), its
 * container and PID namespace ids, its start time and the users it writes files as. A process that is not visible (exited, or another PID namespace) or
 * not readable gives nulls with the reason; a file that vanishes between two reads (the process
 * exited meanwhile) too. layers/host-layer.ts makes the host layer of it.
 */
import { readFile } from 'node:fs/promises';

import type { FieldError, FieldErrors } from '../sample/schema.js';
import { readCgroupMemory, type CgroupMemoryReading } from './cgroup-memory.js';
import { parseCgroupContainerId, parseCgroupPodUid, parseSmapsSplit, parseStatStartTime, parseStatus, parseStatusWriterUids } from './proc-files.js';

export interface ProcessHostReading {
  rssBytes: number | null;
  anonBytes: number | null;
  fileBytes: number | null;
  shmemBytes: number | null;
  /** Resident in mappings of /dev/nvidia*. */
  driverMappedBytes: number | null;
  heapBytes: number | null;
  anonMappingsBytes: number | null;
  anonMappingsCount: number | null;
  /** Its cgroup's memory; null with the reason in errors.container. */
  container: CgroupMemoryReading | null;
  containerId: string | null;
  podUid: string | null;
  /** The pid in each nested PID namespace, outermost first. */
  nspid: number[] | null;
  /** Clock ticks since boot (field 22 of /proc/<pid>/stat). */
  startTimeTicks: number | null;
  /** Effective and fs uid from /proc/<pid>/status (the companion's trust check); null: unknown. */
  writerUids: number[] | null;
  /** Why a null figure is null, by figure name; `host` when nothing could be read. */
  errors: FieldErrors;
}

function notVisible(pid: number, file: string): FieldError {
  return { code: 'PROCESS_NOT_VISIBLE', nvmlReturn: null, message: `no /proc/${pid}/${file}: the process exited or lives in another PID namespace` };
}

function reason(error: unknown, pid: number, file: string): FieldError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ESRCH') return notVisible(pid, file);
  if (code === 'EACCES' || code === 'EPERM') {
    return { code: 'NO_PERMISSION', nvmlReturn: null, message: `/proc/${pid}/${file} is not readable by this user (another user's process: run as root or that user)` };
  }
  return { code: 'PROC_UNREADABLE', nvmlReturn: null, message: `/proc/${pid}/${file}: ${code ?? String(error)}` };
}

async function read(path: string): Promise<{ text: string } | { error: unknown }> {
  try {
    return { text: await readFile(path, 'utf8') };
  } catch (error) {
    return { error };
  }
}

function emptyReading(errors: FieldErrors): ProcessHostReading {
  return {
    rssBytes: null,
    anonBytes: null,
    fileBytes: null,
    shmemBytes: null,
    driverMappedBytes: null,
    heapBytes: null,
    anonMappingsBytes: null,
    anonMappingsCount: null,
    container: null,
    containerId: null,
    podUid: null,
    nspid: null,
    startTimeTicks: null,
    writerUids: null,
    errors,
  };
}

/** A pid /proc does not list (exited, or another PID namespace): no reads made. */
export function invisibleProcessHost(pid: number): ProcessHostReading {
  return emptyReading({ host: notVisible(pid, 'status') });
}

/**
 * The cgroups read in one sample, by the text of /proc/<pid>/cgroup: the processes of one
 * container share one reading.
 */
export type CgroupReadings = Map<string, Promise<CgroupMemoryReading | FieldError>>;

export async function readProcessHost(pid: number, procRoot = '/proc', cgroupRoot = '/sys/fs/cgroup', cgroups: CgroupReadings = new Map()): Promise<ProcessHostReading> {
  const errors: FieldErrors = {};
  const reading = emptyReading(errors);
  const dir = `${procRoot}/${pid}`;
  const [status, smaps, cgroup, stat] = await Promise.all([
    read(`${dir}/status`),
    read(`${dir}/smaps`),
    read(`${dir}/cgroup`),
    read(`${dir}/stat`),
  ]);
  if ('error' in status) {
    errors.host = reason(status.error, pid, 'status');
    return reading;
  }
  const figures = parseStatus(status.text);
  const missing: FieldError = { code: 'NOT_REPORTED', nvmlReturn: null, message: `this kernel's /proc/${pid}/status has no such line (or a figure too large to be true)` };
  for (const key of ['rssBytes', 'anonBytes', 'fileBytes', 'shmemBytes'] as const) {
    reading[key] = figures[key];
    if (figures[key] === null) errors[key] = missing;
  }
  reading.nspid = figures.nspid;
  if (figures.nspid === null) errors.nspid = missing;
  const split = 'error' in smaps ? null : parseSmapsSplit(smaps.text);
  if (split !== null) {
    reading.driverMappedBytes = split.driverMappedBytes;
    reading.heapBytes = split.heapBytes;
    reading.anonMappingsBytes = split.anonMappingsBytes;
    reading.anonMappingsCount = split.anonMappingsCount;
  } else {
    const why: FieldError = 'error' in smaps ? reason(smaps.error, pid, 'smaps') : { code: 'VALUE_OUT_OF_RANGE', nvmlReturn: null, message: `/proc/${pid}/smaps gives a figure too large to be true` };
    for (const key of ['driverMappedBytes', 'heapBytes', 'anonMappingsBytes', 'anonMappingsCount']) errors[key] = why;
  }
  if ('error' in cgroup) {
    errors.containerId = reason(cgroup.error, pid, 'cgroup');
    errors.container = errors.containerId;
  } else {
    let memory = cgroups.get(cgroup.text);
    if (memory === undefined) cgroups.set(cgroup.text, (memory = readCgroupMemory(cgroup.text, cgroupRoot)));
    const container = await memory;
    if ('code' in container) errors.container = container;
    else reading.container = container;
    reading.containerId = parseCgroupContainerId(cgroup.text);
    reading.podUid = parseCgroupPodUid(cgroup.text);
    if (reading.containerId === null) errors.containerId = { code: 'NO_CONTAINER', nvmlReturn: null, message: 'its cgroup path names no container' };
  }
  if ('error' in stat) errors.startTimeTicks = reason(stat.error, pid, 'stat');
  else reading.startTimeTicks = parseStatStartTime(stat.text);
  reading.writerUids = parseStatusWriterUids(status.text);
  return reading;
}
