/**
 * Reads a small file that another party writes (a companion file, a model's config.json) whole,
 * as UTF-8, within a size limit: a larger file is refused before anything is read, and one that
 * grows past the limit while it is read is refused too, so a 1 GB "config.json" never lands in
 * memory. With `regularOnly`, anything but a regular file is refused without waiting: the file
 * is opened non-blocking, since a FIFO with no writer would block open(2) and read(2) forever.
 * With `owners`, the file must be opened without following a link, have no other name (a hard
 * link gives any file a new one) and belong to one of those users or root: a figure is taken
 * only from a file its process's user wrote. Refusals are FileRefusedError; the system's errors
 * (ENOENT, EACCES, EISDIR...) pass through.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

export class FileRefusedError extends Error {
  readonly code: 'FILE_TOO_LARGE' | 'NOT_A_REGULAR_FILE' | 'LINK_REFUSED' | 'OTHER_OWNER';
  constructor(code: FileRefusedError['code'], message: string) {
    super(message);
    this.name = 'FileRefusedError';
    this.code = code;
  }
}

export interface ReadTextFileOptions {
  regularOnly?: boolean;
  /** The users (besides root) whose file is accepted; implies no links and `regularOnly`. */
  owners?: readonly number[];
}

const CHUNK_BYTES = 64 * 1024;

async function openFile(file: string, options: ReadTextFileOptions): Promise<FileHandle> {
  const checked = options.owners !== undefined;
  const flags = constants.O_RDONLY | (checked || options.regularOnly === true ? constants.O_NONBLOCK : 0) | (checked ? constants.O_NOFOLLOW : 0);
  try {
    return await open(file, flags);
  } catch (error) {
    if (checked && (error as NodeJS.ErrnoException).code === 'ELOOP') {
      throw new FileRefusedError('LINK_REFUSED', `${file} is a symbolic link (it could point at any file)`);
    }
    throw error;
  }
}

export async function readTextFile(file: string, maxBytes: number, options: ReadTextFileOptions = {}): Promise<string> {
  const handle = await openFile(file, options);
  try {
    const stat = await handle.stat();
    const owners = options.owners;
    if ((options.regularOnly === true || owners !== undefined) && !stat.isFile()) throw new FileRefusedError('NOT_A_REGULAR_FILE', `${file} is not a regular file`);
    if (owners !== undefined) {
      if (stat.nlink !== 1) throw new FileRefusedError('LINK_REFUSED', `${file} has ${stat.nlink} names (a hard link can give any file another one)`);
      if (stat.uid !== 0 && !owners.includes(stat.uid)) {
        throw new FileRefusedError('OTHER_OWNER', `${file} belongs to uid ${stat.uid}, not to root or uid ${owners.join(' or ')}`);
      }
    }
    const tooLarge = () => new FileRefusedError('FILE_TOO_LARGE', `${file} is larger than ${maxBytes} bytes`);
    if (stat.size > maxBytes) throw tooLarge();
    // Read to the end rather than to stat's size: /proc-like files and pipes report 0.
    const chunks: Buffer[] = [];
    let total = 0;
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK_BYTES, maxBytes + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > maxBytes) throw tooLarge();
      chunks.push(chunk.subarray(0, bytesRead));
    }
    return Buffer.concat(chunks, total).toString('utf8');
  } finally {
    await handle.close();
  }
}
