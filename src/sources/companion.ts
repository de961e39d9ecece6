/**
 * Reads the companion's files ($GPU_LAYERS_STATS_DIR/<pid>.json, written inside each PyTorch
 * process by python/gpu_layers_companion) and turns one device's figures into the allocator
 * layer. A file counts only if its process's user (or root) wrote it (a regular file with one
 * name, not reached through a link: another user can copy a pid and start time from /proc into a
 * file of their own), it is valid, was written by the same process (pid and start time: pids are
 * reused) and is fresh (younger than three of its own intervals, and not from the future);
 * otherwise the reason says which check failed, without quoting the file. layers/allocator-layer.ts
 * makes the allocator layer of a file that counts.
 *
 * A file may also carry `host`: the process's host allocators as the companion reads them
 * in-process: glibc's mallinfo2() over every arena plus the mmapped chunks (null, with
 * `mallocUnknownBecause`, without mallinfo2 (glibc < 2.33, musl), with another malloc preloaded, or
 * on a write where the read was skipped because it was slow), and Python's pymalloc block count
 * and, only when the program started tracemalloc, its traced bytes. Older files have no `host`.
 *
 * A file may also carry `oom`: the last CUDA out-of-memory the companion saw through PyTorch's
 * out-of-memory observer (null before the first; absent in files of older companions). The file
 * is written at that moment, so its figures are the allocator's at the OOM, and every later file
 * repeats it: `count` tells a new OOM from one already seen. `snapshot` is a file name beside the
 * companion file (`<pid>.oom-<count>.pickle`, opt-in), never a path: companionOomSnapshotPath()
 * resolves it in the folder the file was read from.
 */
import path from 'node:path';
import * as z from 'zod/mini';

import { sourceError } from '../sample/field-errors.js';
import type { FieldError } from '../sample/schema.js';
import { validateQuietly } from '../validation.js';
import { FileRefusedError, readTextFile } from './read-text-file.js';

/** The latest time a Date holds (ECMAScript: 8.64e15 ms after 1970). */
const MAX_DATE_MS = 8.64e15;
/** Far more than any companion file (about 10 KiB a device): a larger file is not read. */
export const MAX_COMPANION_BYTES = 4 * 1024 * 1024;
/** The longest interval the companion writes at (it clamps GPU_LAYERS_STATS_INTERVAL to this). */
export const MAX_COMPANION_INTERVAL_SECONDS = 600;
/** Writer and reader share the host's clock: a write time further ahead than this is not true. */
export const FUTURE_SKEW_SECONDS = 5;

const companionDeviceSchema = z.object({
  index: z.int().check(z.nonnegative()),
  uuid: z.nullable(z.string()),
  name: z.nullable(z.string()),
  /** torch.cuda.memory_stats() entries, flattened names. */
  stats: z.record(z.string(), z.number()),
  privatePoolBytes: z.nullable(z.number()),
  /** Largest free block in the segments (only with GPU_LAYERS_STATS_SEGMENTS=1). */
  largestFreeBlockBytes: z.optional(z.nullable(z.number())),
  /** Bytes allocated inside private pools, from the segments (only with GPU_LAYERS_STATS_SEGMENTS=1). */
  privatePoolAllocatedBytes: z.optional(z.nullable(z.number())),
});

/** The longest `mallocUnknownBecause` taken: the companion writes one plain sentence. */
export const MAX_COMPANION_REASON_CHARS = 300;

/** Bytes or a count: an integer the JSON number holds exactly (z.int() is safe integers only). */
const hostCount = () => z.int().check(z.nonnegative());

/** glibc's mallinfo2(), every arena (main and threads') plus the mmapped chunks. */
const companionMallocSchema = z.object({
  source: z.literal('mallinfo2'),
  /** Bytes the arenas took from the system (brk for the main arena, mmapped heaps for the others). */
  arenaBytes: hostCount(),
  /** uordblks + hblkhd: bytes in use in the arenas and in mmapped chunks. */
  inUseBytes: hostCount(),
  /** fordblks: free bytes held in the arenas. */
  freeBytes: hostCount(),
  /** hblkhd: bytes in chunks mmapped one by one (above the mmap threshold). */
  mmappedBytes: hostCount(),
  /** hblks: how many such chunks. */
  mmappedChunks: hostCount(),
  /** keepcost: the free top of the main arena that malloc_trim() could give back. */
  releasableBytes: hostCount(),
  /** Arenas (main included), from malloc_info(); null where it was not read (a slow walk). */
  arenaCount: z.nullable(hostCount()),
});

const companionPythonSchema = z.object({
  /** sys.getallocatedblocks(): pymalloc blocks in use. */
  allocatedBlocks: hostCount(),
  /** tracemalloc's traced bytes; null unless the program itself started tracemalloc. */
  tracedBytes: z.nullable(hostCount()),
});

const companionHostSchema = z.object({
  malloc: z.nullable(companionMallocSchema),
  /** Why `malloc` is null: one sentence from the companion. */
  mallocUnknownBecause: z.nullable(z.string().check(z.maxLength(MAX_COMPANION_REASON_CHARS))),
  python: z.nullable(companionPythonSchema),
});

/** The highest device index taken (torch's c10::DeviceIndex is an int8). */
export const MAX_COMPANION_DEVICE_INDEX = 127;
/**
 * torch passes the observer's byte figures as int64: a whole number up to 2^63, past 2^53 not
 * exact as a JSON number. Not z.int() (safe integers only): an absurd request (a size computed
 * wrong) is exactly what an OOM may report, and it must not make every later file unreadable.
 */
const oomBytes = () =>
  z.number().check(
    z.nonnegative(),
    z.lte(2 ** 63),
    z.refine((value) => Number.isInteger(value), 'expected a whole number of bytes'),
  );
/** `<pid>.oom-<count>.pickle`: a file name alone, no folder, no `..`; checkCompanion matches the pid. */
export const OOM_SNAPSHOT_NAME = /^[1-9][0-9]{0,9}\.oom-[1-9][0-9]{0,15}\.pickle$/;

/** The last CUDA out-of-memory the companion saw, as PyTorch's out-of-memory observer told it. */
const companionOomSchema = z.object({
  /** OOMs this companion saw since its process started (exact, also when writes were coalesced). */
  count: z.int().check(z.positive()),
  /** Unix seconds of the last one. */
  at: z.number().check(z.nonnegative(), z.lte(MAX_DATE_MS / 1000)),
  /** The CUDA device index (the process's own numbering). */
  device: z.int().check(z.nonnegative(), z.lte(MAX_COMPANION_DEVICE_INDEX)),
  /** The request that failed, rounded as the caching allocator rounds it. */
  requestedBytes: oomBytes(),
  /** The device's total memory, or the cap set_per_process_memory_fraction() set (torch calls it device_allocated). */
  deviceTotalBytes: oomBytes(),
  /** What cudaMemGetInfo() reported free at the OOM (every process on the GPU counts). */
  deviceFreeBytes: oomBytes(),
  /** The newest memory snapshot written (GPU_LAYERS_OOM_SNAPSHOT=1), a file name in the stats folder. */
  snapshot: z.nullable(z.string().check(z.maxLength(40), z.regex(OOM_SNAPSHOT_NAME))),
  /** Why the last OOM has no snapshot of its own (snapshots on): one sentence from the companion. */
  snapshotError: z.nullable(z.string().check(z.maxLength(MAX_COMPANION_REASON_CHARS))),
});

export const companionFileSchema = z.object({
  format: z.literal('gpu-layers-companion'),
  version: z.literal(1),
  pid: z.int().check(z.positive()),
  startTimeTicks: z.int().check(z.nonnegative()),
  /** Unix seconds, within the range of a Date (the layer gives it as an ISO time). */
  writtenAt: z.number().check(z.nonnegative(), z.lte(MAX_DATE_MS / 1000)),
  intervalSeconds: z.number().check(z.positive(), z.lte(MAX_COMPANION_INTERVAL_SECONDS)),
  torchVersion: z.nullable(z.string()),
  devices: z.array(companionDeviceSchema),
  /** The host's allocators (absent in files of companions before it). */
  host: z.optional(z.nullable(companionHostSchema)),
  /** The last CUDA out-of-memory (null before the first; absent in files of companions before it). */
  oom: z.optional(z.nullable(companionOomSchema)),
  errors: z.array(z.string()),
});

/** The schema's own field names: any other name in a failure's path came from the file. */
const SCHEMA_KEYS: ReadonlySet<string> = new Set([
  ...Object.keys(companionFileSchema.shape),
  ...Object.keys(companionDeviceSchema.shape),
  ...Object.keys(companionHostSchema.shape),
  ...Object.keys(companionMallocSchema.shape),
  ...Object.keys(companionPythonSchema.shape),
  ...Object.keys(companionOomSchema.shape),
]);

export type CompanionFile = z.infer<typeof companionFileSchema>;
export type CompanionDevice = z.infer<typeof companionDeviceSchema>;
export type CompanionHost = z.infer<typeof companionHostSchema>;
export type CompanionOom = z.infer<typeof companionOomSchema>;

/** Where the OOM's snapshot is: its name in the folder the companion file `file` was read from. */
export function companionOomSnapshotPath(file: string, oom: CompanionOom): string | null {
  return oom.snapshot === null ? null : path.join(path.dirname(file), oom.snapshot);
}

export type CompanionResult =
  | { ok: true; file: string; document: CompanionFile; ageSeconds: number }
  | { ok: false; file: string; error: FieldError };

/** What /proc says of the process a file claims to describe. */
export interface CompanionProcess {
  /** Clock ticks since boot at its start (null: /proc does not show it; no pid-reuse check). */
  startTimeTicks: number | null;
  /** The users whose files it writes (effective and fs uid); null: unknown, no file is trusted. */
  writerUids: readonly number[] | null;
}

/** A file is stale once three intervals have passed without a write. */
export const STALE_INTERVALS = 3;

/**
 * Checks a companion document against the process it should describe. `startTimeTicks` is the
 * process's start time from /proc (null when /proc does not show it: no pid-reuse check then).
 */
export function checkCompanion(
  file: string,
  text: string,
  pid: number,
  startTimeTicks: number | null,
  nowMs: number,
): CompanionResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text: a file that is not the companion's could be anything.
    return { ok: false, file, error: sourceError('COMPANION_INVALID', `${file} is not JSON (cut short, or not a companion file)`) };
  }
  const parsed = validateQuietly(companionFileSchema, json, SCHEMA_KEYS);
  if (!parsed.ok) return { ok: false, file, error: sourceError('COMPANION_INVALID', `${file} is not a companion file: ${parsed.message}`) };
  const document = parsed.data;
  if (document.pid !== pid) {
    return { ok: false, file, error: sourceError('COMPANION_INVALID', `${file} describes pid ${document.pid}, not ${pid}`) };
  }
  if (document.oom?.snapshot != null && !document.oom.snapshot.startsWith(`${document.pid}.`)) {
    // The companion names its snapshots after its own pid: another name is not one it wrote.
    return { ok: false, file, error: sourceError('COMPANION_INVALID', `${file} names an OOM snapshot of another process`) };
  }
  if (startTimeTicks !== null && document.startTimeTicks !== startTimeTicks) {
    return {
      ok: false,
      file,
      error: sourceError('COMPANION_OTHER_PROCESS', `${file} was written by an earlier process with pid ${pid} (started at tick ${document.startTimeTicks}, this one at ${startTimeTicks})`),
    };
  }
  const aheadSeconds = document.writtenAt - nowMs / 1000;
  if (aheadSeconds > FUTURE_SKEW_SECONDS) {
    return { ok: false, file, error: sourceError('COMPANION_INVALID', `${file} claims it was written ${aheadSeconds.toFixed(1)} s in the future: not a file the companion wrote on this host`) };
  }
  const ageSeconds = Math.max(0, -aheadSeconds);
  if (ageSeconds > STALE_INTERVALS * document.intervalSeconds) {
    return {
      ok: false,
      file,
      error: sourceError('COMPANION_STALE', `${file} was last written ${ageSeconds.toFixed(1)} s ago; the companion writes every ${document.intervalSeconds} s (hung or stopped?)`),
    };
  }
  return { ok: true, file, document, ageSeconds };
}

/** The result for a process with no file in the folder. */
export function missingCompanion(directory: string, pid: number): CompanionResult {
  const file = path.join(directory, `${pid}.json`);
  return { ok: false, file, error: sourceError('COMPANION_MISSING', `no ${file}: the gpu-layers companion is not running in this process (see \`gpu-layers companion\`)`) };
}

export async function readCompanion(directory: string, pid: number, owner: CompanionProcess, nowMs = Date.now()): Promise<CompanionResult> {
  const file = path.join(directory, `${pid}.json`);
  if (owner.writerUids === null) {
    return { ok: false, file, error: sourceError('COMPANION_UNTRUSTED', `${file}: cannot tell which user runs pid ${pid} (/proc does not show it), so nobody vouches for the file`) };
  }
  let text: string;
  try {
    // Opened without blocking and refused unless a regular file: anyone who can write the folder
    // could leave a FIFO there, and waiting on it would hang every sample.
    text = await readTextFile(file, MAX_COMPANION_BYTES, { owners: owner.writerUids });
  } catch (error) {
    if (error instanceof FileRefusedError) {
      const code = error.code === 'FILE_TOO_LARGE' || error.code === 'NOT_A_REGULAR_FILE' ? 'COMPANION_INVALID' : 'COMPANION_UNTRUSTED';
      const why = code === 'COMPANION_INVALID' ? 'not a companion file' : "not joined: only the process's own user or root writes its figures";
      return { ok: false, file, error: sourceError(code, `${error.message}: ${why}`) };
    }
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return missingCompanion(directory, pid);
    return { ok: false, file, error: sourceError('COMPANION_UNREADABLE', `${file}: ${code ?? String(error)}`) };
  }
  return checkCompanion(file, text, pid, owner.startTimeTicks, nowMs);
}
