/**
 * analyzeSnapshot(pathOrBuffer): the figures of a PyTorch memory snapshot
 * (torch.cuda.memory._dump_snapshot), read with the restricted pickle reader in two streaming
 * passes over the file (the first finds which memo entries are ever fetched again, the second
 * builds values and hands each segment and trace entry to the analysis, then drops it). The file
 * is never held in memory whole, and reading yields to the event loop between chunks.
 */
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

import { GpuLayersError } from '../errors.js';
import { fileErrorReason } from '../file-error-reason.js';
import { MemoGetScanner, PickleFormatError, PickleReader, isDict, type PickleLimits } from './pickle-reader.js';
import { SnapshotAnalysis, SnapshotShapeError, checkDeviceTraceCount } from './snapshot-analysis.js';
import { SNAPSHOT_REPORT_VERSION, type SnapshotReport } from './snapshot-report-schema.js';

export interface SnapshotProgress {
  /** "scan": the first pass (memo references); "read": the second (values and figures). */
  phase: 'scan' | 'read';
  bytes: number;
  totalBytes: number;
}

export interface AnalyzeSnapshotOptions {
  onProgress?: (progress: SnapshotProgress) => void;
  limits?: Partial<PickleLimits>;
  /** Bytes read from the file at a time (default 4 MiB). */
  chunkBytes?: number;
}

type Step = (buf: Buffer, base: number) => { consumed: number; need: number; done: boolean };

/** Something the passes read from: a file through a handle, or a buffer. */
interface Source {
  size: number;
  read(position: number, length: number): Promise<Buffer>;
}

function bufferSource(buffer: Buffer): Source {
  return { size: buffer.length, read: async (position, length) => buffer.subarray(position, position + length) };
}

function fileSource(handle: FileHandle, size: number): Source {
  return {
    size,
    read: async (position, length) => {
      const buffer = Buffer.allocUnsafe(Math.min(length, Math.max(0, size - position)));
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, position + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return buffer.subarray(0, filled);
    },
  };
}

/**
 * Feeds `step` the source in chunks, keeping the unused tail of each for the next. Running out
 * of bytes before `step` is done is a truncated pickle, or, with `lenient` (the first pass, which
 * leaves reporting to the second), simply the end.
 */
async function pass(source: Source, chunkBytes: number, step: Step, progress: (bytes: number) => void, lenient = false): Promise<void> {
  let base = 0;
  let buffer = await source.read(0, chunkBytes);
  for (;;) {
    const { consumed, need, done } = step(buffer, base);
    if (done) return;
    const next = base + consumed;
    const tail = consumed < buffer.length ? buffer.subarray(consumed) : Buffer.alloc(0);
    if (next + tail.length >= source.size) {
      if (lenient) return;
      throw new PickleFormatError(`the file ends in the middle of the pickle (truncated?), ${source.size} bytes`, Math.min(next, source.size));
    }
    const fresh = await source.read(next + tail.length, Math.max(chunkBytes, need - tail.length));
    buffer = tail.length === 0 ? fresh : Buffer.concat([tail, fresh]);
    base = next;
    progress(base);
  }
}

function invalid(name: string, error: unknown): GpuLayersError {
  if (error instanceof PickleFormatError || error instanceof SnapshotShapeError) {
    return new GpuLayersError('SNAPSHOT_INVALID', `${name}: ${error.message}`, { cause: error });
  }
  return error as GpuLayersError;
}

async function analyzeSource(source: Source, name: string, file: string | null, options: AnalyzeSnapshotOptions): Promise<SnapshotReport> {
  if (source.size === 0) throw new GpuLayersError('SNAPSHOT_INVALID', `${name}: the file is empty`);
  const chunkBytes = options.chunkBytes ?? 4 * 1024 * 1024;
  const report = (phase: SnapshotProgress['phase']) => (bytes: number) => options.onProgress?.({ phase, bytes, totalBytes: source.size });

  const scanner = new MemoGetScanner(source.size);
  await pass(source, chunkBytes, (buf) => ({ ...scanner.scan(buf), done: scanner.done }), report('scan'), true);

  const analysis = new SnapshotAnalysis({ maxBlocks: source.size });
  const segmentSink = (items: unknown[]): void => {
    for (const item of items) analysis.segment(item);
  };
  let traceLists: unknown[] | null = null;
  let traceListCount = 0;
  const reader = new PickleReader({
    limits: options.limits,
    keepMemo: scanner.gets,
    totalBytes: source.size,
    onNewList: (list, parent, key, parentIsRoot) => {
      if (parent === null || (parentIsRoot && key === 'segments')) return segmentSink;
      if (parentIsRoot && key === 'device_traces') traceLists = list;
      else if (traceLists !== null && parent === traceLists) {
        checkDeviceTraceCount(++traceListCount);
        return (items) => analysis.traceEntries(list, items);
      }
      return null;
    },
  });
  await pass(source, chunkBytes, (buf, base) => ({ ...reader.decode(buf, base), done: reader.done }), report('read'));
  report('read')(source.size);

  const root = reader.result;
  let segments: unknown;
  let deviceTraces: unknown;
  if (Array.isArray(root)) {
    segments = root;
  } else if (isDict(root)) {
    if (!('segments' in root)) {
      throw new SnapshotShapeError(`the pickle holds a dict without "segments" (keys: ${Object.keys(root).slice(0, 8).join(', ') || 'none'})`);
    }
    segments = root.segments;
    deviceTraces = root.device_traces;
  } else {
    throw new SnapshotShapeError(`the pickle holds ${root === null ? 'None' : typeof root}, not a dict of segments and traces`);
  }
  if (!Array.isArray(segments)) throw new SnapshotShapeError('"segments" is not a list');
  // Items the reader could not stream (a list built in one go) are counted here.
  segmentSink(segments.splice(0));
  return {
    schemaVersion: SNAPSHOT_REPORT_VERSION,
    file,
    sizeBytes: source.size,
    protocol: reader.protocol!,
    devices: analysis.devices(deviceTraces),
  };
}

export async function analyzeSnapshot(input: string | Buffer, options: AnalyzeSnapshotOptions = {}): Promise<SnapshotReport> {
  if (Buffer.isBuffer(input)) {
    try {
      return await analyzeSource(bufferSource(input), 'the snapshot', null, options);
    } catch (error) {
      throw invalid('the snapshot', error);
    }
  }
  let handle: FileHandle;
  try {
    // Non-blocking, so that a FIFO without a writer is refused below instead of waited on.
    handle = await open(input, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw new GpuLayersError('SNAPSHOT_UNREADABLE', `cannot read the snapshot ${input}: ${fileErrorReason(error)}`, { cause: error });
  }
  try {
    const stat = await handle.stat();
    if (stat.isDirectory()) throw new GpuLayersError('SNAPSHOT_UNREADABLE', `cannot read the snapshot ${input}: it is a folder`);
    // A FIFO or a device would block reading or never end: only regular files.
    if (!stat.isFile()) throw new GpuLayersError('SNAPSHOT_UNREADABLE', `cannot read the snapshot ${input}: not a regular file`);
    return await analyzeSource(fileSource(handle, stat.size), input, input, options);
  } catch (error) {
    if (error instanceof GpuLayersError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== undefined) throw new GpuLayersError('SNAPSHOT_UNREADABLE', `cannot read the snapshot ${input}: ${fileErrorReason(error)}`, { cause: error });
    throw invalid(input, error);
  } finally {
    await handle.close();
  }
}
