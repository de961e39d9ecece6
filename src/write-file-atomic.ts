/**
 * Writes a whole file so that readers see the old one or the new one, never half: the data goes
 * to a temporary beside it, then a rename. The folder may be shared (/tmp) or another user's, so
 * the temporary gets an unpredictable name and is created O_EXCL|O_NOFOLLOW: a link or file
 * planted at any name is never opened, and the rename replaces a link at FILE itself, never its
 * target. Throws the system's error (the caller says what it was writing); leaves no temporary.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, renameSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';

/**
 * `.<name>.<pid>.<16 hex>.tmp`: hidden, and never among the `FILE*` a user hands on. A name taken
 * (by a link, a file, a folder) is passed over for another.
 */
function createTemporaryBeside(file: string): { path: string; fd: number } {
  const stem = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.`);
  for (let attempt = 0; ; attempt++) {
    const temporary = `${stem}${randomBytes(8).toString('hex')}.tmp`;
    try {
      return { path: temporary, fd: openSync(temporary, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o666) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 16) throw error;
    }
  }
}

/** Writes all of `bytes` at the descriptor's position (a write may take fewer: a signal, a quota). */
export function writeAll(fd: number, bytes: Uint8Array): void {
  for (let written = 0; written < bytes.length; ) written += writeSync(fd, bytes, written);
}

export function writeFileAtomic(file: string, data: string | Uint8Array): void {
  const temporary = createTemporaryBeside(file);
  let fd: number | null = temporary.fd;
  try {
    writeAll(fd, typeof data === 'string' ? Buffer.from(data) : data);
    const closing = fd;
    fd = null;
    closeSync(closing);
    renameSync(temporary.path, file);
  } catch (error) {
    if (fd !== null) closeSync(fd);
    try {
      unlinkSync(temporary.path);
    } catch {
      // Already renamed, or replaced by someone else meanwhile: not ours to chase.
    }
    throw error;
  }
}
