/**
 * Appends layered samples to a recording, one JSON line each, so that a SIGKILL at any moment
 * leaves a file that reads back to the last complete sample: every line goes out in one write(2)
 * on an O_APPEND descriptor, a new file (or a rotated one) appears complete with its header
 * through a rename, and reopening a file whose last line was torn cuts that line off first.
 * Writes are synchronous: one small write per interval, to the page cache, never a wait on I/O
 * the caller could overlap with anything.
 *
 * The folder may be shared (/tmp) or another user's: the temporary is created O_EXCL|O_NOFOLLOW
 * under an unpredictable name, FILE is opened without following a link unless this user or root
 * made the link, a FILE another user owns is not continued, and the cleanup of leftovers removes
 * only this user's own regular files. Nothing planted there redirects a write or fails the writer
 * with anything but a clear OUTPUT_UNWRITABLE.
 */
import { accessSync, closeSync, constants, existsSync, fstatSync, ftruncateSync, lstatSync, openSync, readdirSync, readSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { GpuLayersError } from '../errors.js';
import { fileErrorReason } from '../file-error-reason.js';
import { writeAll, writeFileAtomic } from '../write-file-atomic.js';
import type { LayeredSample } from '../layers/schema.js';
import { parseRecordingHeader, type RecordingHeader } from './recording-header.js';

export interface RecordingWriterOptions {
  /** Rotate before the file would pass this size: FILE becomes FILE.1, FILE.1 becomes FILE.2... */
  maxBytes?: number;
  /** Rotated files kept besides FILE (default 3); older ones are deleted. */
  keep?: number;
}

function unwritable(file: string, error: unknown): GpuLayersError {
  return new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the recording ${file}: ${fileErrorReason(error)}`, { cause: error });
}

/** The first line of an open file, read in small pieces (a recording can be large). */
function firstLine(fd: number): string {
  const chunks: Buffer[] = [];
  const buffer = Buffer.alloc(4096);
  for (let position = 0; position < 1 << 20; ) {
    const n = readSync(fd, buffer, 0, buffer.length, position);
    if (n === 0) break;
    const newline = buffer.subarray(0, n).indexOf(10);
    chunks.push(Buffer.from(buffer.subarray(0, newline === -1 ? n : newline)));
    if (newline !== -1) break;
    position += n;
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Offset just past the file's last newline (0 when it has none). */
function endOfLastLine(fd: number, size: number): number {
  const buffer = Buffer.alloc(4096);
  for (let end = size; end > 0; ) {
    const start = Math.max(0, end - buffer.length);
    const n = readSync(fd, buffer, 0, end - start, start);
    const newline = buffer.subarray(0, n).lastIndexOf(10);
    if (newline !== -1) return start + newline + 1;
    end = start;
  }
  return 0;
}

/** The descriptor of a writer that holds no file. */
const CLOSED = -1;

/** A writer's temporary lives for one write and one rename; one this old was left by a kill. */
const STALE_TEMPORARY_MS = 60_000;

/** Files of this user and of root are this writer's to follow, continue or remove; no one else's. */
function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === process.geteuid?.();
}

function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** `.FILE.<pid>.<16 hex>.tmp`, and `.FILE.<pid>.tmp` as writers before the random part named them. */
const TEMPORARY_SUFFIX = /^(\d+)(?:\.[0-9a-f]{16})?\.tmp$/;

/**
 * Removes the temporaries of FILE that writers killed before their rename left behind: this
 * user's regular files whose pid no longer runs and that are older than any live writer's. A
 * writer in another PID namespace sharing the folder could have a pid that means nothing here,
 * hence the age; another user's files, or anything but a regular file, are never touched.
 */
function removeStaleTemporaries(file: string): void {
  const dir = path.dirname(file);
  const prefix = `.${path.basename(file)}.`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    const pid = name.startsWith(prefix) ? TEMPORARY_SUFFIX.exec(name.slice(prefix.length))?.[1] : undefined;
    if (pid === undefined || Number(pid) === process.pid || running(Number(pid))) continue;
    const temporary = path.join(dir, name);
    try {
      const info = lstatSync(temporary);
      if (info.isFile() && info.uid === process.geteuid?.() && Date.now() - info.mtimeMs > STALE_TEMPORARY_MS) unlinkSync(temporary);
    } catch {
      // Gone meanwhile, or not ours to remove: a leftover is harmless, hidden from FILE*.
    }
  }
}

/**
 * Opens an existing FILE to read its header and append, refusing what another user put there: a
 * link they made (it could point anywhere this user can write), or a file they own (this user's
 * samples would be theirs to read). Opened once, O_APPEND: no second open a swap could redirect.
 */
function openExisting(file: string): number {
  let link: boolean;
  try {
    const info = lstatSync(file);
    link = info.isSymbolicLink();
    if (link && !trustedOwner(info.uid)) {
      throw new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the recording ${file}: it is a link another user (uid ${info.uid}) made; record into a file of your own`);
    }
  } catch (error) {
    throw error instanceof GpuLayersError ? error : unwritable(file, error);
  }
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDWR | constants.O_APPEND | (link ? 0 : constants.O_NOFOLLOW));
  } catch (error) {
    throw unwritable(file, error);
  }
  const info = fstatSync(fd);
  const refusal = !info.isFile() ? 'it is not a regular file' : trustedOwner(info.uid) ? null : `it belongs to another user (uid ${info.uid}); record into a file of your own`;
  if (refusal !== null) {
    closeSync(fd);
    throw new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the recording ${file}: ${refusal}`);
  }
  return fd;
}

/** Whether anything (a dangling link included) is at `file`. */
function present(file: string): boolean {
  try {
    lstatSync(file);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw unwritable(file, error);
  }
}

/**
 * Whether FILE can be recorded into, asked before anything is sampled (the writer itself opens
 * FILE at the first sample, whose driver versions go in the header): an existing file must be a
 * recording, a new one's folder must exist and be writable. Throws what the writer would.
 */
export function checkRecordingTarget(file: string): void {
  if (present(file)) {
    const fd = openExisting(file);
    try {
      parseRecordingHeader(firstLine(fd), file);
    } finally {
      closeSync(fd);
    }
    return;
  }
  try {
    accessSync(path.dirname(path.resolve(file)), constants.W_OK);
  } catch (error) {
    throw unwritable(file, error);
  }
}

export class RecordingWriter {
  readonly file: string;
  readonly #header: () => RecordingHeader;
  readonly #maxBytes: number | null;
  readonly #keep: number;
  #fd: number;
  #size: number;
  #headerBytes: number;

  /**
   * Opens FILE for appending, creating it with `header()` when it does not exist. An existing
   * recording of the same schema is continued (a torn last line cut off); anything else is
   * refused rather than overwritten. Temporaries killed writers left beside FILE are removed.
   */
  constructor(file: string, header: () => RecordingHeader, options: RecordingWriterOptions = {}) {
    this.file = file;
    this.#header = header;
    this.#maxBytes = options.maxBytes ?? null;
    this.#keep = options.keep ?? 3;
    removeStaleTemporaries(file);
    if (!present(file)) this.#create();
    this.#fd = openExisting(file);
    try {
      const line = firstLine(this.#fd);
      const existing = parseRecordingHeader(line, file);
      if (existing.schemaVersion !== header().schemaVersion) {
        throw new GpuLayersError('RECORDING_INVALID', `${file} is a recording of schema ${existing.schemaVersion}; this gpu-layers writes schema ${header().schemaVersion}: record into another file`);
      }
      this.#headerBytes = Buffer.byteLength(line) + 1;
      const size = fstatSync(this.#fd).size;
      this.#size = endOfLastLine(this.#fd, size);
      if (this.#size < this.#headerBytes) {
        // The header alone, without its newline (a file made by hand): end its line, keep it.
        writeAll(this.#fd, Buffer.from('\n'));
        this.#size = this.#headerBytes;
      } else if (this.#size < size) ftruncateSync(this.#fd, this.#size);
    } catch (error) {
      closeSync(this.#fd);
      throw error;
    }
  }

  /** Writes one sample as one line; rotates first when the line would pass maxBytes. */
  append(sample: LayeredSample): void {
    if (this.#fd === CLOSED) throw new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the recording ${this.file}: it is closed (after close(), or a rotation that failed)`);
    const line = Buffer.from(`${JSON.stringify(sample)}\n`);
    if (this.#maxBytes !== null && this.#size > this.#headerBytes && this.#size + line.length > this.#maxBytes) this.#rotate();
    try {
      writeAll(this.#fd, line);
    } catch (error) {
      throw unwritable(this.file, error);
    }
    this.#size += line.length;
  }

  /** Closes FILE; again, or after a failed rotation, does nothing. */
  close(): void {
    if (this.#fd === CLOSED) return;
    const fd = this.#fd;
    this.#fd = CLOSED;
    closeSync(fd);
  }

  /**
   * A complete file appears at once: header written to a temporary name, then renamed
   * (writeFileAtomic). The temporary is hidden (.FILE.<pid>.<random>.tmp): a kill before the
   * rename leaves it behind, empty or with a header only, and a FILE.<pid>.tmp would be among the
   * `FILE*` parts a user hands to `diagnose`, which refuses an empty file. The next writer of
   * FILE removes such leftovers.
   */
  #create(): void {
    try {
      writeFileAtomic(this.file, `${JSON.stringify(this.#header())}\n`);
    } catch (error) {
      throw unwritable(this.file, error);
    }
  }

  #rotate(): void {
    this.close();
    try {
      if (this.#keep === 0) rmSync(this.file, { force: true });
      else {
        // Shift only the files below the first free number: a kill in the middle of an earlier
        // rotation leaves a gap (FILE.1 and FILE.3, no FILE.2), which this fills; deleting
        // FILE.keep then would lose the oldest samples while --keep still had room for them.
        let free = 1;
        while (free < this.#keep && existsSync(`${this.file}.${free}`)) free++;
        rmSync(`${this.file}.${free}`, { force: true });
        for (let i = free - 1; i >= 1; i--) {
          if (existsSync(`${this.file}.${i}`)) renameSync(`${this.file}.${i}`, `${this.file}.${i + 1}`);
        }
        renameSync(this.file, `${this.file}.1`);
      }
      this.#create();
      this.#fd = openExisting(this.file);
    } catch (error) {
      throw error instanceof GpuLayersError ? error : unwritable(this.file, error);
    }
    this.#size = fstatSync(this.#fd).size;
    this.#headerBytes = this.#size;
  }
}
