/**
 * The memory of a process's cgroup (a container, a systemd service, a Kubernetes pod's container):
 * usage, the working set the kubelet evicts on, the limit and the OOM counts, from cgroup v2 or
 * v1. The membership comes from /proc/PID/cgroup's text; the files are read under the cgroup
 * filesystem's root (`/sys/fs/cgroup`, or the host's, mounted elsewhere). The parsers are pure
 * functions over the files' text (tested with fixtures of either version); the reader opens every
 * file non-blocking, refuses anything but a regular file and reads a bounded number of bytes.
 *
 * v2: `/proc/PID/cgroup` has `0::/path`; `memory.current`, `memory.max`, `memory.stat`,
 * `memory.events` under `${root}${path}/`. v1: a line `N:memory:/path` (the memory controller
 * alone or with others); `memory.usage_in_bytes`, `memory.limit_in_bytes`, `memory.stat`,
 * `memory.oom_control` under `${root}/memory${path}/`. On a hybrid host (v1 controllers and a v2
 * hierarchy side by side, `0::/` among the v1 lines) the memory controller is in v1: its line wins.
 */
import { stat } from 'node:fs/promises';

import { notReported, sourceError } from '../sample/field-errors.js';
import type { FieldError, FieldErrors } from '../sample/schema.js';
import { FileRefusedError, readTextFile } from './read-text-file.js';

export interface CgroupMemoryReading {
  version: 1 | 2;
  /** The cgroup path from /proc/PID/cgroup (relative to the cgroup root). */
  path: string;
  /** v2 memory.current; v1 memory.usage_in_bytes. */
  usageBytes: number | null;
  /**
   * usage - inactive_file, floored at 0: what the kubelet evicts on
   * (container_memory_working_set_bytes). v2: inactive_file from memory.stat; v1:
   * total_inactive_file.
   */
  workingSetBytes: number | null;
  /**
   * memory.max / memory.limit_in_bytes; null when there is no limit ("max", or v1's huge number
   * near 2^63 rounded to the page). This cgroup's own limit: an ancestor's may be lower.
   */
  limitBytes: number | null;
  /** memory.events: oom (v1 has no OOM count: null). */
  oomEvents: number | null;
  /** memory.events: oom_kill (v1: memory.oom_control's oom_kill, kernels 4.13+). */
  oomKills: number | null;
  /** Why each null figure is null (key = field name). A limit that is absent because there is none gets code 'NO_LIMIT'. */
  errors: FieldErrors;
}

export interface CgroupMembership {
  version: 1 | 2;
  path: string;
}

/**
 * The process's memory cgroup from the text of /proc/PID/cgroup ("hierarchy-id:controllers:path"
 * lines): v1's memory controller if a line names it, else the v2 line `0::/path`; null when
 * neither is there. The path may itself hold colons; it must start with "/".
 */
export function parseCgroupMembership(procCgroupText: string): CgroupMembership | null {
  let unified: CgroupMembership | null = null;
  for (const line of procCgroupText.split('\n')) {
    const first = line.indexOf(':');
    const second = first === -1 ? -1 : line.indexOf(':', first + 1);
    if (second === -1) continue;
    const id = line.slice(0, first);
    const controllers = line.slice(first + 1, second);
    const path = line.slice(second + 1);
    if (!/^\d+$/.test(id) || !path.startsWith('/')) continue;
    if (controllers.split(',').includes('memory')) return { version: 1, path };
    if (id === '0' && controllers === '' && unified === null) unified = { version: 2, path };
  }
  return unified;
}

/** The kernel's "no limit" in bytes is PAGE_COUNTER_MAX pages: 2^63 minus a page, for any page size. */
const NO_LIMIT_FROM = 2n ** 62n;
const BELOW_2_64 = 2n ** 64n;

/**
 * A single-value cgroup file (memory.current, memory.max, memory.usage_in_bytes,
 * memory.limit_in_bytes): a whole number of bytes below 2^53; 'max' for the word "max" or for
 * the kernel's unlimited number (2^62 or more, below 2^64); null for anything else (a negative,
 * a fraction, a number in between, words, more than one line).
 */
export function parseCgroupValue(text: string): number | 'max' | null {
  const value = text.endsWith('\n') ? text.slice(0, -1) : text;
  if (value === 'max') return 'max';
  if (value.length === 0 || value.length > 20 || !/^\d+$/.test(value)) return null;
  const number = Number(value);
  if (Number.isSafeInteger(number)) return number;
  const big = BigInt(value);
  return big >= NO_LIMIT_FROM && big < BELOW_2_64 ? 'max' : null;
}

/**
 * A flat-keyed cgroup file ("key value" lines: memory.stat, memory.events, memory.oom_control):
 * each key's value, null when it is not a whole number below 2^53. A key given twice keeps its
 * first value; lines of another shape are skipped. A Map, so that a key such as "__proto__" is
 * only a key.
 */
export function parseFlatKeyed(text: string): ReadonlyMap<string, number | null> {
  const values = new Map<string, number | null>();
  for (const line of text.split('\n')) {
    const space = line.indexOf(' ');
    if (space <= 0) continue;
    const key = line.slice(0, space);
    if (values.has(key)) continue;
    const digits = line.slice(space + 1);
    const number = digits.length > 0 && digits.length <= 20 && /^\d+$/.test(digits) ? Number(digits) : NaN;
    values.set(key, Number.isSafeInteger(number) ? number : null);
  }
  return values;
}

/** memory.stat: the same flat-keyed format. */
export const parseMemoryStat = parseFlatKeyed;
/** memory.events (v2) and memory.oom_control (v1): the same flat-keyed format. */
export const parseMemoryEvents = parseFlatKeyed;

/** Each version's file for each figure (`events` is v1's memory.oom_control). */
const FILES = {
  2: { usage: 'memory.current', limit: 'memory.max', stat: 'memory.stat', events: 'memory.events' },
  1: { usage: 'memory.usage_in_bytes', limit: 'memory.limit_in_bytes', stat: 'memory.stat', events: 'memory.oom_control' },
} as const;

type FileRole = keyof (typeof FILES)[1];

/** Each file's text, or why it could not be read. */
export type CgroupMemoryFiles = Record<FileRole, string | FieldError>;

/** Single values are a line; memory.stat has about 60 lines (64 KiB is ten times what any kernel writes). */
const MAX_BYTES: Record<FileRole, number> = { usage: 4096, limit: 4096, stat: 64 * 1024, events: 64 * 1024 };

const outOfRange = (file: string, text: string): FieldError =>
  sourceError('VALUE_OUT_OF_RANGE', `${file} holds ${JSON.stringify(text.slice(0, 40))}, not a whole number of bytes below 2^53`);

/**
 * The reading from the files' texts (or their read errors): pure, so that any content can be
 * tested. `dir` names the cgroup's folder in the messages.
 */
export function cgroupMemoryOf(membership: CgroupMembership, files: CgroupMemoryFiles, dir: string): CgroupMemoryReading {
  const { version, path } = membership;
  const names = FILES[version];
  const where = (role: FileRole) => `${dir}/${names[role]}`;
  const errors: FieldErrors = {};
  const reading: CgroupMemoryReading = { version, path, usageBytes: null, workingSetBytes: null, limitBytes: null, oomEvents: null, oomKills: null, errors };

  const usage = files.usage;
  if (typeof usage !== 'string') errors.usageBytes = usage;
  else {
    const value = parseCgroupValue(usage);
    if (typeof value === 'number') reading.usageBytes = value;
    else errors.usageBytes = outOfRange(where('usage'), usage);
  }

  const limit = files.limit;
  if (typeof limit !== 'string') errors.limitBytes = limit;
  else {
    const value = parseCgroupValue(limit);
    if (typeof value === 'number') reading.limitBytes = value;
    else if (value === 'max') {
      errors.limitBytes = sourceError('NO_LIMIT', `${where('limit')} says ${JSON.stringify(limit.trim())}: this cgroup sets no memory limit (an ancestor's may still apply)`);
    } else errors.limitBytes = outOfRange(where('limit'), limit);
  }

  const inactiveKey = version === 2 ? 'inactive_file' : 'total_inactive_file';
  if (reading.usageBytes === null) errors.workingSetBytes = errors.usageBytes!;
  else if (typeof files.stat !== 'string') errors.workingSetBytes = files.stat;
  else {
    const inactive = parseFlatKeyed(files.stat).get(inactiveKey);
    if (inactive === undefined) errors.workingSetBytes = notReported(`${where('stat')} has no ${inactiveKey} line`);
    else if (inactive === null) errors.workingSetBytes = sourceError('VALUE_OUT_OF_RANGE', `${where('stat')}: ${inactiveKey} is not a whole number of bytes below 2^53`);
    else reading.workingSetBytes = Math.max(0, reading.usageBytes - inactive);
  }

  const events = files.events;
  const count = (key: string, field: 'oomEvents' | 'oomKills', missing: string) => {
    if (typeof events !== 'string') {
      errors[field] = events;
      return;
    }
    const value = parseFlatKeyed(events).get(key);
    if (value === undefined) errors[field] = notReported(`${where('events')} has no ${key} line${missing}`);
    else if (value === null) errors[field] = sourceError('VALUE_OUT_OF_RANGE', `${where('events')}: ${key} is not a whole count below 2^53`);
    else reading[field] = value;
  };
  if (version === 2) count('oom', 'oomEvents', '');
  else errors.oomEvents = notReported('cgroup v1 counts no OOM events (memory.oom_control has under_oom, a state, and oom_kill)');
  count('oom_kill', 'oomKills', version === 1 ? ' (kernels before 4.13 have none)' : '');
  return reading;
}

/** Why a file of the cgroup could not be read. */
function readError(error: unknown, file: string, membership: CgroupMembership): FieldError {
  if (error instanceof FileRefusedError) return sourceError(error.code, error.message);
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') {
    if (membership.version === 2 && membership.path === '/') {
      return notReported(`the root cgroup has no ${file.slice(file.lastIndexOf('/') + 1)}: the process is in no memory-limited cgroup`);
    }
    return notReported(
      membership.version === 2
        ? `${file} is missing: the memory controller is not enabled for this cgroup (its parent's cgroup.subtree_control lacks "memory"), or the cgroup was just removed`
        : `${file} is missing: this kernel does not have it, or the cgroup was just removed`,
    );
  }
  if (code === 'EACCES' || code === 'EPERM') return sourceError('NO_PERMISSION', `${file} is not readable by this user`);
  return sourceError('CGROUP_UNREADABLE', `${file}: ${code ?? String(error)}`);
}

async function readFileOrError(file: string, maxBytes: number, membership: CgroupMembership): Promise<string | FieldError> {
  try {
    return await readTextFile(file, maxBytes, { regularOnly: true });
  } catch (error) {
    return readError(error, file, membership);
  }
}

/**
 * The memory of the cgroup /proc/PID/cgroup names (its text is `procCgroupText`), from the cgroup
 * filesystem under `cgroupRoot`. Inside a container with its own cgroup namespace the path is `/`
 * and the root is the container's cgroup. A FieldError when nothing can be read: no memory cgroup
 * in the text (NO_MEMORY_CGROUP), or a cgroup whose folder is not under the root
 * (CGROUP_NOT_VISIBLE: the process is in another cgroup namespace than the reader).
 */
/** The folder of `membership`'s memory cgroup under `cgroupRoot`, and the base it must be under. */
export function cgroupFolder(membership: CgroupMembership, cgroupRoot: string): { dir: string; base: string; escapes: boolean } {
  const root = cgroupRoot.replace(/\/+$/, '');
  const base = membership.version === 2 ? root : `${root}/memory`;
  const dir = membership.path === '/' ? base : `${base}${membership.path.replace(/\/+$/, '')}`;
  // The kernel writes a cgroup outside the reader's namespace as a path with "..": never follow one out of the root.
  return { dir, base, escapes: membership.path.split('/').includes('..') || membership.path.includes('\0') };
}

export async function readCgroupMemory(procCgroupText: string, cgroupRoot = '/sys/fs/cgroup'): Promise<CgroupMemoryReading | FieldError> {
  const membership = parseCgroupMembership(procCgroupText);
  if (membership === null) {
    return sourceError('NO_MEMORY_CGROUP', '/proc/PID/cgroup names neither a cgroup v2 hierarchy ("0::/path") nor a v1 memory controller');
  }
  const { dir, base, escapes } = cgroupFolder(membership, cgroupRoot);
  const notVisible = () =>
    sourceError(
      'CGROUP_NOT_VISIBLE',
      `the cgroup of that process (${membership.path}) is not under ${base} (another cgroup namespace: run on the host or mount the host's /sys/fs/cgroup)`,
    );
  if (escapes) return notVisible();
  try {
    if (!(await stat(dir)).isDirectory()) return notVisible();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return notVisible();
    return readError(error, dir, membership);
  }
  const names = FILES[membership.version];
  const roles = Object.keys(names) as FileRole[];
  const texts = await Promise.all(roles.map((role) => readFileOrError(`${dir}/${names[role]}`, MAX_BYTES[role], membership)));
  const files = Object.fromEntries(roles.map((role, i) => [role, texts[i]!])) as CgroupMemoryFiles;
  return cgroupMemoryOf(membership, files, dir);
}
