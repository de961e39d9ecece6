/**
 * RecordingWriter's own edges: a rotation that fails leaves a writer that refuses to write (a
 * typed error) and closes without a second error, and a recording whose header has no newline
 * (made by hand) is continued, not emptied.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { readRecording } from '../../src/recording/read-recording.js';
import { RecordingWriter } from '../../src/recording/write-recording.js';
import { repoRoot } from '../helpers/paths.js';
import { recordingHeader } from '../helpers/report-recording.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-writer-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const samples = (await readRecording(path.join(repoRoot, 'assets/overnight.recording.jsonl.gz'))).samples;

describe('RecordingWriter', () => {
  it('after a failed rotation: appends refused with OUTPUT_UNWRITABLE, close() quiet', () => {
    const dir = mkdtempSync(path.join(work, 'rotate-'));
    const file = path.join(dir, 'r.jsonl');
    // FILE.1 is a folder with something in it: the rotation cannot make room for the old part.
    mkdirSync(`${file}.1`);
    writeFileSync(path.join(`${file}.1`, 'x'), '');
    const writer = new RecordingWriter(file, () => recordingHeader(), { maxBytes: 1, keep: 1 });
    writer.append(samples[0]!);
    expect(() => writer.append(samples[1]!)).toThrow(expect.objectContaining({ code: 'OUTPUT_UNWRITABLE' }));
    expect(() => writer.append(samples[2]!)).toThrow(expect.objectContaining({ code: 'OUTPUT_UNWRITABLE', message: expect.stringMatching(/closed/) }));
    expect(() => writer.close()).not.toThrow();
    expect(() => writer.close()).not.toThrow();
  });

  it('continues a recording whose header has no newline, keeping the header', async () => {
    const file = path.join(work, 'no-newline.jsonl');
    const header = JSON.stringify(recordingHeader());
    writeFileSync(file, header);
    const writer = new RecordingWriter(file, () => recordingHeader());
    writer.append(samples[0]!);
    writer.close();
    expect(readFileSync(file, 'utf8').split('\n')[0]).toBe(header);
    const read = await readRecording(file);
    expect(read.samples.map((s) => s.takenAt)).toEqual([samples[0]!.takenAt]);
    expect(read.warnings).toEqual([]);
  });
});
