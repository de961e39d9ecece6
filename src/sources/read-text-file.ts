/**
 * Reads a small file that another party writes (a companion file, a model's config.json) whole,
 * as UTF-8, within a size limit: a larger file is refused before anything is read, and one that
 * grows past the limit while it is read is refused too, so a 1 GB "config.json" never lands in
 * memory. With `regularOnly`, anything but a regular file is refused without waiting: the file
 * is opened non-blocking, since a FIFO with no writer would block open(2) and read(2) forever.
 * Refusals are FileRefusedError; the system's errors (ENOENT, EACCES, EISDIR...) pass through.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';

export class FileRefusedError extends Error {
  readonly code: 'FILE_TOO_LARGE' | 'NOT_A_REGULAR_FILE';
  constructor(code: FileRefusedError['code'], message: string) {
    super(message);
    this.name = 'FileRefusedError';
    this.code = code;
  }
}

const CHUNK_BYTES = 64 * 1024;

export async function readTextFile(file: string, maxBytes: number, options: { regularOnly?: boolean } = {}): Promise<string> {
  const handle = await open(file, constants.O_RDONLY | (options.regularOnly === true ? constants.O_NONBLOCK : 0));
  try {
    const stat = await handle.stat();
    if (options.regularOnly === true && !stat.isFile()) throw new FileRefusedError('NOT_A_REGULAR_FILE', `${file} is not a regular file`);
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
