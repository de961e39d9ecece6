/**
 * The host layer of a GPU process from /proc: its RSS split into anonymous, file-backed, shmem and
 * the NVIDIA driver's mappings, its container and PID namespace ids, and its start time. A process
 * that is not visible (exited, or another PID namespace) or not readable gives nulls with the
 * reason; a file that vanishes between two reads (the process exited meanwhile) too.
 */
import { readFile } from 'node:fs/promises';

import type { HostLayer } from '../layers/schema.js';
import type { FieldError, FieldErrors } from '../sample/schema.js';
import { parseCgroupContainerId, parseCgroupPodUid, parseSmapsDriverRss, parseStatStartTime, parseStatus, parseStatusWriterUids } from './proc-files.js';

/** The host layer, and who the process writes files as (for the companion's trust check). */
export interface HostReading {
  layer: HostLayer;
  /** Effective and fs uid from /proc/<pid>/status; null when not readable. */
  writerUids: number[] | null;
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

function emptyLayer(errors: FieldErrors): HostLayer {
  return {
    rssBytes: null,
    anonBytes: null,
    fileBytes: null,
    shmemBytes: null,
    driverMappedBytes: null,
    containerId: null,
    podUid: null,
    nspid: null,
    startTimeTicks: null,
    errors,
  };
}

/** The layer of a pid /proc does not list (exited, or another PID namespace): no reads made. */
export function invisibleHostLayer(pid: number): HostLayer {
  return emptyLayer({ host: notVisible(pid, 'status') });
}

export async function readHostLayer(pid: number, procRoot = '/proc'): Promise<HostLayer> {
  return (await readHostReading(pid, procRoot)).layer;
}

export async function readHostReading(pid: number, procRoot = '/proc'): Promise<HostReading> {
  const errors: FieldErrors = {};
  const layer = emptyLayer(errors);
  const dir = `${procRoot}/${pid}`;
  const [status, smaps, cgroup, stat] = await Promise.all([
    read(`${dir}/status`),
    read(`${dir}/smaps`),
    read(`${dir}/cgroup`),
    read(`${dir}/stat`),
  ]);
  if ('error' in status) {
    errors.host = reason(status.error, pid, 'status');
    return { layer, writerUids: null };
  }
  const figures = parseStatus(status.text);
  const missing: FieldError = { code: 'NOT_REPORTED', nvmlReturn: null, message: `this kernel's /proc/${pid}/status has no such line (or a figure too large to be true)` };
  for (const key of ['rssBytes', 'anonBytes', 'fileBytes', 'shmemBytes'] as const) {
    layer[key] = figures[key];
    if (figures[key] === null) errors[key] = missing;
  }
  layer.nspid = figures.nspid;
  if (figures.nspid === null) errors.nspid = missing;
  if ('error' in smaps) errors.driverMappedBytes = reason(smaps.error, pid, 'smaps');
  else {
    layer.driverMappedBytes = parseSmapsDriverRss(smaps.text);
    if (layer.driverMappedBytes === null) errors.driverMappedBytes = { code: 'VALUE_OUT_OF_RANGE', nvmlReturn: null, message: `/proc/${pid}/smaps gives an Rss too large to be true` };
  }
  if ('error' in cgroup) {
    errors.containerId = reason(cgroup.error, pid, 'cgroup');
  } else {
    layer.containerId = parseCgroupContainerId(cgroup.text);
    layer.podUid = parseCgroupPodUid(cgroup.text);
    if (layer.containerId === null) errors.containerId = { code: 'NO_CONTAINER', nvmlReturn: null, message: 'its cgroup path names no container' };
  }
  if ('error' in stat) errors.startTimeTicks = reason(stat.error, pid, 'stat');
  else layer.startTimeTicks = parseStatStartTime(stat.text);
  return { layer, writerUids: parseStatusWriterUids(status.text) };
}
