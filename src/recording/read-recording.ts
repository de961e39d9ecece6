/**
 * Reads a recording back: the header, then every complete sample line. What a crash can leave
 * (a torn last line) and what a bad line in the middle is cost a warning and that line, never
 * the file; a file that is not a recording, is empty, or comes from a newer schema is an error.
 * Samples out of time order are put back in order, with a warning.
 */
import { constants as bufferConstants } from 'node:buffer';
import { readFile, stat } from 'node:fs/promises';
import { gunzipSync } from 'node:zlib';

import { GpuLayersError } from '../errors.js';
import { fileErrorReason } from '../file-error-reason.js';
import { layeredSampleSchema, type LayeredSample } from '../layers/schema.js';
import { SAMPLE_SCHEMA_VERSION } from '../sample/schema-version.js';
import { validate } from '../validation.js';
import { RECORDING_FORMAT, recordingHeaderSchema, type RecordingHeader } from './recording-header.js';

export interface Recording {
  header: RecordingHeader;
  samples: LayeredSample[];
  /** What was skipped or repaired, one sentence each. */
  warnings: string[];
}

/** Warnings about single lines beyond this many are summed up in one. */
const MAX_LINE_WARNINGS = 5;

/**
 * The largest recording read, on disk or once decompressed: the longest string this JavaScript
 * engine holds (about 512 MiB), which the text must become anyway. Checked before reading and
 * while decompressing, so neither a huge file nor a small gzip that inflates to gigabytes
 * takes more memory than this.
 */
const MAX_RECORDING_BYTES = bufferConstants.MAX_STRING_LENGTH;

function notARecording(name: string, why: string): GpuLayersError {
  return new GpuLayersError('RECORDING_INVALID', `${name} is not a gpu-layers recording: ${why}`);
}

export function parseRecordingHeader(line: string, name: string): RecordingHeader {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw notARecording(name, 'its first line is not a recording header');
  }
  const format = (value as { format?: unknown } | null)?.format;
  if (format !== RECORDING_FORMAT) throw notARecording(name, 'its first line is not a recording header');
  const version = (value as { schemaVersion?: unknown }).schemaVersion;
  if (typeof version === 'number' && version > SAMPLE_SCHEMA_VERSION) {
    throw new GpuLayersError(
      'RECORDING_TOO_NEW',
      `${name} was recorded with sample schema ${version}; this gpu-layers reads schema ${SAMPLE_SCHEMA_VERSION}: upgrade gpu-layers to read it`,
    );
  }
  const parsed = validate(recordingHeaderSchema, value);
  if (!parsed.ok) throw notARecording(name, `its header is invalid: ${parsed.message}`);
  return parsed.data;
}

/** The first issue of a prettified zod error on one line: "expected array, received string at devices". */
function firstIssue(message: string): string {
  const [what = '', where = ''] = message.split('\n');
  return `${what.replace(/^✖\s*/, '')}${where.includes('→') ? ` ${where.trim().replace(/^→\s*/, '')}` : ''}`;
}

function byTime(a: LayeredSample, b: LayeredSample): number {
  return Date.parse(a.takenAt) - Date.parse(b.takenAt);
}

export function parseRecording(text: string, name: string): Recording {
  if (text.trim() === '') throw notARecording(name, 'the file is empty');
  if (text.includes('\u0000')) throw notARecording(name, 'it is a binary file');
  const lines = text.split('\n');
  const header = parseRecordingHeader(lines[0]!, name);
  const warnings: string[] = [];
  let lineWarnings = 0;
  const warnLine = (message: string): void => {
    lineWarnings++;
    if (lineWarnings <= MAX_LINE_WARNINGS) warnings.push(message);
  };

  const samples: LayeredSample[] = [];
  // The text after the last newline is a line the writer did not finish.
  const last = lines.length - 1;
  if (lines[last] !== '') warnings.push(`${name}: line ${last + 1} is incomplete (the recorder stopped mid-write); skipped`);
  let outOfOrder: number | null = null;
  for (let i = 1; i < last; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      warnLine(`${name}: line ${i + 1} is not JSON; skipped`);
      continue;
    }
    const parsed = validate(layeredSampleSchema, value);
    if (!parsed.ok) {
      warnLine(`${name}: line ${i + 1} is not a valid sample (${firstIssue(parsed.message)}); skipped`);
      continue;
    }
    const previous = samples[samples.length - 1];
    if (outOfOrder === null && previous !== undefined && byTime(parsed.data, previous) < 0) outOfOrder = i + 1;
    samples.push(parsed.data);
  }
  if (lineWarnings > MAX_LINE_WARNINGS) warnings.push(`${name}: ${lineWarnings - MAX_LINE_WARNINGS} more bad lines skipped`);
  if (outOfOrder !== null) {
    warnings.push(`${name}: samples are out of time order (line ${outOfOrder} is earlier than the line before it); read in time order`);
    samples.sort(byTime);
  }
  return { header, samples, warnings };
}

/** Reads FILE (gzip-compressed or not: `gzip` on a recording is the natural way to keep it). */
export async function readRecording(file: string): Promise<Recording> {
  let text: string;
  const tooLarge = `cannot read the recording ${file}: it is, or decompresses to, more than ${MAX_RECORDING_BYTES} bytes (record with --max-size to keep parts smaller)`;
  try {
    if ((await stat(file)).size > MAX_RECORDING_BYTES) throw new GpuLayersError('RECORDING_UNREADABLE', tooLarge);
    const content = await readFile(file);
    const gzipped = content[0] === 0x1f && content[1] === 0x8b;
    text = (gzipped ? gunzipSync(content, { maxOutputLength: MAX_RECORDING_BYTES }) : content).toString('utf8');
  } catch (error) {
    if (error instanceof GpuLayersError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE' || code === 'ERR_STRING_TOO_LONG') throw new GpuLayersError('RECORDING_UNREADABLE', tooLarge, { cause: error });
    if (code === 'Z_DATA_ERROR' || code === 'Z_BUF_ERROR') throw notARecording(file, 'it is a damaged gzip file');
    throw new GpuLayersError('RECORDING_UNREADABLE', `cannot read the recording ${file}: ${fileErrorReason(error)}`, { cause: error });
  }
  return parseRecording(text, file);
}

/**
 * Several recordings of one host read as one (a rotated recording's parts, in any order): the
 * earliest header, the samples in time order, every warning. A sample present in two parts
 * (the same takenAt) is kept once.
 */
export async function readRecordings(files: readonly string[]): Promise<Recording> {
  const parts = await Promise.all(files.map((file) => readRecording(file)));
  if (parts.length === 1) return parts[0]!;
  parts.sort((a, b) => Date.parse(a.header.startedAt) - Date.parse(b.header.startedAt));
  const seen = new Set<string>();
  const samples: LayeredSample[] = [];
  for (const sample of parts.flatMap((p) => p.samples).sort(byTime)) {
    if (seen.has(sample.takenAt)) continue;
    seen.add(sample.takenAt);
    samples.push(sample);
  }
  return { header: parts[0]!.header, samples, warnings: parts.flatMap((p) => p.warnings) };
}
