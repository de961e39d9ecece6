/**
 * Reads a recording back: the header, then every complete sample line. What a crash can leave
 * (a torn last line) and what a bad line in the middle is cost a warning and that line, never
 * the file; a file that is not a recording, is empty, or comes from a newer schema is an error.
 * Samples out of time order are put back in order, with a warning. readRecording streams the
 * file (stream-recording.ts) and checks each sample against the schema; parseRecording does the
 * same for a text already in memory.
 */
import { constants as bufferConstants } from 'node:buffer';

import { GpuLayersError } from '../errors.js';
import { layeredSampleSchema, type LayeredSample } from '../layers/schema.js';
import { validate } from '../validation.js';
import { notARecording, parseRecordingHeader, type RecordingHeader } from './recording-header.js';
import { SampleLines } from './sample-lines.js';
import { streamRecording } from './stream-recording.js';

export interface Recording {
  header: RecordingHeader;
  samples: LayeredSample[];
  /** What was skipped or repaired, one sentence each. */
  warnings: string[];
}

/**
 * The largest part read, on disk or once decompressed, by a reader that keeps every sample: the
 * longest string this JavaScript engine holds (about 512 MiB), so that neither a huge file nor a
 * small gzip that inflates to gigabytes fills the memory. `diagnose` streams (no such limit).
 */
const MAX_RECORDING_BYTES = bufferConstants.MAX_STRING_LENGTH;

/** The first issue of a prettified zod error on one line: "expected array, received string at devices". */
function firstIssue(message: string): string {
  const [what = '', where = ''] = message.split('\n');
  return `${what.replace(/^✖\s*/, '')}${where.includes('→') ? ` ${where.trim().replace(/^→\s*/, '')}` : ''}`;
}

/** A line's JSON as a layered sample, or the schema's first complaint. */
function acceptSample(value: unknown): { ok: true; data: LayeredSample } | { ok: false; message: string } {
  const parsed = validate(layeredSampleSchema, value);
  return parsed.ok ? parsed : { ok: false, message: firstIssue(parsed.message) };
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
  const judge = new SampleLines(name, acceptSample, (warning) => warnings.push(warning));
  // The text after the last newline is a line the writer did not finish.
  const last = lines.length - 1;
  if (lines[last] !== '') judge.incomplete(last + 1);
  const samples: LayeredSample[] = [];
  for (let i = 1; i < last; i++) {
    const sample = judge.take(i + 1, lines[i]!);
    if (sample !== null) samples.push(sample.value);
  }
  judge.finish();
  if (judge.outOfOrder) samples.sort(byTime);
  return { header, samples, warnings };
}

/** Reads FILE (gzip-compressed or not: `gzip` on a recording is the natural way to keep it). */
export async function readRecording(file: string): Promise<Recording> {
  return readRecordings([file]);
}

/**
 * Several recordings of one host read as one (a rotated recording's parts, in any order): the
 * earliest header, the samples in time order, every warning. A sample present in two parts
 * (the same takenAt) is kept once. Read as a stream (stream-recording.ts), so the event loop
 * keeps its turns; every sample is kept, so each part is limited to MAX_RECORDING_BYTES.
 */
export async function readRecordings(files: readonly string[]): Promise<Recording> {
  const warnings: string[] = [];
  const stream = await streamRecording(files, (warning) => warnings.push(warning), {
    maxPartBytes: MAX_RECORDING_BYTES,
    accept: acceptSample,
  });
  const samples: LayeredSample[] = [];
  let inOrder = true;
  for await (const { value } of stream.samples) {
    const previous = samples[samples.length - 1];
    if (previous !== undefined && byTime(value, previous) < 0) inOrder = false;
    samples.push(value);
  }
  if (!inOrder) samples.sort(byTime);
  return { header: stream.header, samples, warnings };
}
