/**
 * Reads recordings as a stream, in memory bounded by one line (and a number per sample, to hand on
 * once a sample two parts share) whatever their length: each part
 * (gzip-compressed or not) is decompressed and split as it is read, and each sample line parsed
 * and handed on as recorded JSON, for the caller to validate (the diagnosis reads its figures
 * out of it, process-figures.ts). Parts of a rotated recording are read in the order of their
 * headers; a sample two parts both hold (the same takenAt) is handed on once; samples out of time
 * order are handed on and said (the diagnosis sorts its histories). What a crash can leave (a
 * torn last line) and a bad line cost a warning and that line; a file that is not a recording,
 * is empty, binary, from a newer schema, or not a regular file is an error. The event loop gets a
 * turn at least every YIELD_MS of work, so a library caller's server keeps serving.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

import { GpuLayersError } from '../errors.js';
import { fileErrorReason } from '../file-error-reason.js';
import { notARecording, parseRecordingHeader, type RecordingHeader } from './recording-header.js';
import { SampleLines, type Accept } from './sample-lines.js';

/** A sample line longer than this is skipped (8 GPUs x 64 processes is under 1 MiB). */
const MAX_LINE_BYTES = 64 * 1024 * 1024;
/** Work between two turns of the event loop. */
const YIELD_MS = 10;

export interface StreamedLine<T = unknown> {
  file: string;
  /** 1-based, the header being line 1. */
  line: number;
  value: T;
}

interface PartHeader {
  file: string;
  header: RecordingHeader;
}

interface Part extends PartHeader {
  handle: FileHandle;
  gzipped: boolean;
}

function unreadable(file: string, error: unknown): GpuLayersError {
  return new GpuLayersError('RECORDING_UNREADABLE', `cannot read the recording ${file}: ${fileErrorReason(error)}`, { cause: error });
}

/** The file's bytes from its start, read with positioned reads (the handle stays the caller's). */
async function* fileChunks(handle: FileHandle): AsyncGenerator<Buffer> {
  for (let position = 0; ; ) {
    const buffer = Buffer.allocUnsafe(256 * 1024);
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
    if (bytesRead === 0) return;
    position += bytesRead;
    yield buffer.subarray(0, bytesRead);
  }
}

/**
 * The decompressed bytes of a part. pipeline(), not pipe(): a read error of the file reaches the
 * reader through the gunzip stream (pipe() would leave it unhandled and the reader waiting).
 */
function contentOf(handle: FileHandle, gzipped: boolean): AsyncIterable<Buffer> {
  if (!gzipped) return fileChunks(handle);
  const gunzip = createGunzip();
  // The error, if any, is the gunzip stream's too, and its reader's to handle.
  pipeline(Readable.from(fileChunks(handle)), gunzip, () => undefined);
  return gunzip;
}

interface Line {
  /** 1-based, the header being line 1. */
  number: number;
  bytes: Buffer;
  /** Whether a newline ended it (the last line of a file may have none: a torn write). */
  ended: boolean;
  /** Longer than any sample: its bytes were dropped as they came. */
  tooLong: boolean;
}

function tooLarge(file: string, maxBytes: number): GpuLayersError {
  return new GpuLayersError(
    'RECORDING_UNREADABLE',
    `cannot read the recording ${file}: it is, or decompresses to, more than ${maxBytes} bytes (record with --max-size to keep parts smaller)`,
  );
}

/**
 * The part's non-empty lines (Buffers without the newline), a batch per chunk read: one turn of
 * the async machinery per chunk, not per line, and a run of empty lines skipped byte by byte
 * (a file of newlines costs a scan, not millions of yields). More than `maxBytes` decompressed
 * is an error.
 */
async function* lineBatches(part: { file: string; handle: FileHandle; gzipped: boolean }, maxBytes: number): AsyncGenerator<Line[]> {
  const input = contentOf(part.handle, part.gzipped);
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let tooLong = false;
  let number = 1;
  let total = 0;
  try {
    for await (const chunk of input) {
      total += chunk.length;
      if (total > maxBytes) throw tooLarge(part.file, maxBytes);
      const batch: Line[] = [];
      let from = 0;
      for (let newline = chunk.indexOf(10, from); newline !== -1; newline = chunk.indexOf(10, from)) {
        if (newline > from || pendingBytes > 0 || tooLong) {
          const piece = chunk.subarray(from, newline);
          const bytes = tooLong ? Buffer.alloc(0) : pending.length === 0 ? piece : Buffer.concat([...pending, piece]);
          batch.push({ number, bytes, ended: true, tooLong });
          pending = [];
          pendingBytes = 0;
          tooLong = false;
        }
        number++;
        from = newline + 1;
        while (chunk[from] === 10) {
          number++;
          from++;
        }
      }
      if (from < chunk.length && !tooLong) {
        pending.push(chunk.subarray(from));
        pendingBytes += chunk.length - from;
        if (pendingBytes > MAX_LINE_BYTES) {
          pending = [];
          pendingBytes = 0;
          tooLong = true;
        }
      }
      if (batch.length > 0) yield batch;
    }
  } catch (error) {
    if (error instanceof GpuLayersError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw notARecording(part.file, 'it is a damaged gzip file');
    throw unreadable(part.file, error);
  }
  if (pendingBytes > 0 || tooLong) yield [{ number, bytes: Buffer.concat(pending), ended: false, tooLong }];
}

/** The first line (the header), read on its own stream, which is then dropped. */
async function firstLine(handle: FileHandle, gzipped: boolean, file: string): Promise<Buffer> {
  const input = contentOf(handle, gzipped);
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const chunk of input) {
      const newline = chunk.indexOf(10);
      chunks.push(newline === -1 ? chunk : chunk.subarray(0, newline));
      total += chunk.length;
      if (newline !== -1 || total > MAX_LINE_BYTES) break;
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw notARecording(file, 'it is a damaged gzip file');
    throw unreadable(file, error);
  }
  return Buffer.concat(chunks);
}

/** Opens one part: a regular file (never waited on: a FIFO or a device is refused), its header read. */
async function openPart(file: string, maxBytes: number): Promise<Part> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw unreadable(file, error);
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw unreadable(file, Object.assign(new Error('EISDIR'), { code: 'EISDIR' }));
    if (!stat.isFile()) throw new GpuLayersError('RECORDING_UNREADABLE', `cannot read the recording ${file}: it is not a regular file (a FIFO, socket or device)`);
    if (stat.size > maxBytes) throw tooLarge(file, maxBytes);
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    if (bytesRead === 0) throw notARecording(file, 'the file is empty');
    const gzipped = bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
    const first = await firstLine(handle, gzipped, file);
    if (first.includes(0)) throw notARecording(file, 'it is a binary file');
    const text = first.toString('utf8');
    if (text.trim() === '') throw notARecording(file, 'the file is empty');
    return { file, handle, gzipped, header: parseRecordingHeader(text, file) };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

export interface RecordingStream<T = unknown> {
  /** The earliest part's header. */
  header: RecordingHeader;
  /** The sample lines, parsed (and accepted), in the parts' order. */
  samples: AsyncGenerator<StreamedLine<T>, void, undefined>;
}

export interface StreamOptions<T> {
  /**
   * Turns a line's JSON into a sample or says why it is not one (the line is then skipped with a
   * warning, counted with the other bad lines). Without it every JSON line with a takenAt passes.
   */
  accept?: Accept<T>;
  /**
   * A part larger than this, on disk or decompressed, is an error (RECORDING_UNREADABLE): for a
   * caller that keeps every sample. The stream itself needs memory for one line only.
   */
  maxPartBytes?: number;
}

/**
 * Opens the parts of a recording (checking each one's header at once) and streams their samples.
 * `onWarning` is told what was skipped or repaired, one sentence each.
 */
export async function streamRecording<T = unknown>(
  files: readonly string[],
  onWarning: (message: string) => void,
  options: StreamOptions<T> = {},
): Promise<RecordingStream<T>> {
  if (files.length === 0) throw new GpuLayersError('INVALID_OPTIONS', 'no recording to read: give at least one file');
  const maxBytes = options.maxPartBytes ?? Number.POSITIVE_INFINITY;
  // Each part's header is checked now and its file closed again: the samples open each part in
  // turn, so a caller that reads only the header, or stops early, holds no file.
  const parts: PartHeader[] = [];
  for (const file of files) {
    const part = await openPart(file, maxBytes);
    await part.handle.close();
    parts.push({ file, header: part.header });
  }
  parts.sort((a, b) => Date.parse(a.header.startedAt) - Date.parse(b.header.startedAt));
  const accept = options.accept ?? ((value: unknown) => ({ ok: true as const, data: value as T }));
  return { header: parts[0]!.header, samples: samplesOf(parts, onWarning, accept, maxBytes) };
}

async function* samplesOf<T>(
  parts: readonly PartHeader[],
  onWarning: (message: string) => void,
  accept: Accept<T>,
  maxBytes: number,
): AsyncGenerator<StreamedLine<T>, void, undefined> {
  const seen = new Set<number>();
  let turn = performance.now();
  for (const { file } of parts) {
    // Opened again (its header checked again: the file may have changed since), closed after.
    const part = await openPart(file, maxBytes);
    try {
      const judge = new SampleLines(file, accept, onWarning);
      for await (const batch of lineBatches(part, maxBytes)) {
        for (const { number: line, bytes, ended, tooLong } of batch) {
          if (performance.now() - turn > YIELD_MS) {
            await new Promise<void>((resolve) => setImmediate(resolve));
            turn = performance.now();
          }
          if (line === 1) continue;
          if (!ended) judge.incomplete(line);
          else if (tooLong) judge.tooLong(line, MAX_LINE_BYTES);
          else {
            const sample = judge.take(line, bytes.toString('utf8'));
            if (sample === null || seen.has(sample.t)) continue;
            seen.add(sample.t);
            yield { file, line, value: sample.value };
          }
        }
      }
      judge.finish();
    } finally {
      await part.handle.close().catch(() => undefined);
    }
  }
}
