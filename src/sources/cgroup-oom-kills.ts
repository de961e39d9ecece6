/**
 * A cgroup's OOM-kill count read on its own (memory.events' oom_kill on v2, memory.oom_control's
 * on v1), for the moment a GPU process has gone: did the kernel's OOM killer end it? When the
 * container's own cgroup went with it, the count is read from its parent instead (v2 counts the
 * kills of every cgroup below in each memory.events; a Kubernetes pod's cgroup outlives a
 * restarted container). null with the reason where neither can be read.
 */
import { sourceError } from '../sample/field-errors.js';
import type { FieldError } from '../sample/schema.js';
import { cgroupFolder, parseMemoryEvents } from './cgroup-memory.js';
import { readTextFile } from './read-text-file.js';

const MAX_BYTES = 64 * 1024;

export interface OomKillCount {
  count: number;
  /** The cgroup path the count was read from. */
  path: string;
}

/** The cgroup above `path` ("/a/b" → "/a"; "/" has none). */
export function parentCgroup(path: string): string | null {
  const trimmed = path.replace(/\/+$/, '');
  if (trimmed === '') return null;
  const cut = trimmed.lastIndexOf('/');
  return cut <= 0 ? '/' : trimmed.slice(0, cut);
}

/** The oom_kill count of exactly this cgroup, or why not. */
export async function readOomKills(version: 1 | 2, path: string, cgroupRoot = '/sys/fs/cgroup'): Promise<OomKillCount | FieldError> {
  const { dir: folder, escapes } = cgroupFolder({ version, path }, cgroupRoot);
  if (escapes) return sourceError('CGROUP_NOT_VISIBLE', `${path} is not under ${cgroupRoot}`);
  const file = `${folder}/${version === 2 ? 'memory.events' : 'memory.oom_control'}`;
  let text: string;
  try {
    text = await readTextFile(file, MAX_BYTES, { regularOnly: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return sourceError('CGROUP_GONE', `${folder} is gone (the container ended with its process)`);
    return sourceError('CGROUP_UNREADABLE', `${file}: ${code ?? String(error)}`);
  }
  const count = parseMemoryEvents(text).get('oom_kill');
  if (count === undefined || count === null) return sourceError('NOT_REPORTED', `${file} has no oom_kill count (a kernel before 4.13)`);
  return { count, path };
}
