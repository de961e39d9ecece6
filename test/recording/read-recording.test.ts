/**
 * The recording reader on hand-made files: what a bad line in the middle costs (a warning and
 * that line), how many warnings it prints, gzip, and the header checks.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { parseRecording, readRecording } from '../../src/recording/read-recording.js';
import { incidentSamples, recordingHeader } from '../helpers/report-recording.js';

const header = JSON.stringify(recordingHeader());
const samples = incidentSamples().map((s) => JSON.stringify(s));
let work: string;
beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-read-recording-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('parseRecording', () => {
  it('skips a line that is not JSON or not a sample, with a warning naming it, and keeps the rest', () => {
    const broken = JSON.stringify({ ...JSON.parse(samples[2]!), devices: 'none' });
    const text = [header, samples[0], '{"half":', samples[1], broken, samples[3], ''].join('\n');
    const recording = parseRecording(text, 'r.jsonl');
    expect(recording.samples.map((s) => s.takenAt)).toEqual([0, 1, 3].map((i) => JSON.parse(samples[i]!).takenAt));
    expect(recording.warnings).toEqual([
      'r.jsonl: line 3 is not JSON; skipped',
      expect.stringMatching(/^r\.jsonl: line 5 is not a valid sample \(.*devices.*\); skipped$/),
    ]);
  });

  it('says five bad lines one by one and the rest in one sentence', () => {
    const text = [header, ...Array.from({ length: 9 }, () => 'garbage'), samples[0], ''].join('\n');
    const recording = parseRecording(text, 'r');
    expect(recording.samples).toHaveLength(1);
    expect(recording.warnings).toHaveLength(6);
    expect(recording.warnings[5]).toBe('r: 4 more bad lines skipped');
  });

  it('a header of another format or an invalid one is refused', () => {
    expect(() => parseRecording('{"format":"something-else"}\n', 'x')).toThrow(expect.objectContaining({ code: 'RECORDING_INVALID' }));
    expect(() => parseRecording(`${JSON.stringify({ ...JSON.parse(header), intervalMs: -1 })}\n`, 'x')).toThrow(
      expect.objectContaining({ code: 'RECORDING_INVALID', message: expect.stringMatching(/its header is invalid/) }),
    );
  });
});

describe('readRecording', () => {
  it('reads a gzipped recording as the plain one, and refuses a damaged gzip', async () => {
    const text = [header, ...samples, ''].join('\n');
    const plain = path.join(work, 'r.jsonl');
    const zipped = path.join(work, 'r.jsonl.gz');
    writeFileSync(plain, text);
    writeFileSync(zipped, gzipSync(text));
    expect(await readRecording(zipped)).toEqual(await readRecording(plain));
    const damaged = path.join(work, 'damaged.gz');
    writeFileSync(damaged, gzipSync(text).subarray(0, 100));
    await expect(readRecording(damaged)).rejects.toMatchObject({ code: 'RECORDING_INVALID', message: expect.stringMatching(/damaged gzip/) });
  });
});
