/**
 * The streamed reader `diagnose` uses: the same samples as the whole-file reader (plain and
 * gzip), rotated parts in any order with a shared sample handed on once, the same warnings and
 * errors for what a crash or a user can leave, and special files refused without being waited on.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, copyFileSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';

import { parseRecording } from '../../src/recording/read-recording.js';
import { streamRecording } from '../../src/recording/stream-recording.js';
import { SAMPLE_SCHEMA_VERSION } from '../../src/sample/schema-version.js';
import { repoRoot } from '../helpers/paths.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-stream-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
const demo = path.join(repoRoot, 'assets/overnight.recording.jsonl.gz');

async function streamed(files: string[]) {
  const warnings: string[] = [];
  const stream = await streamRecording(files, (w) => warnings.push(w));
  const samples: unknown[] = [];
  for await (const { value } of stream.samples) samples.push(value);
  return { header: stream.header, samples, warnings };
}

async function demoLines(): Promise<string[]> {
  const { execFileSync: run } = await import('node:child_process');
  return run('zcat', [demo], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 }).trim().split('\n');
}

async function errorOf(files: string[]): Promise<{ code: string; message: string }> {
  try {
    await streamed(files);
  } catch (error) {
    return error as { code: string; message: string };
  }
  throw new Error('no error');
}

describe('streamRecording', () => {
  it('gives the samples the whole-text reader gives, gzip or plain', async () => {
    const whole = parseRecording((await demoLines()).join('\n') + '\n', demo);
    const gz = await streamed([demo]);
    expect(gz.header).toEqual(whole.header);
    expect(gz.samples).toEqual(JSON.parse(JSON.stringify(whole.samples)));
    const plain = path.join(work, 'plain.jsonl');
    writeFileSync(plain, (await demoLines()).join('\n') + '\n');
    expect((await streamed([plain])).samples).toEqual(gz.samples);
  });

  it('reads rotated parts in the order of their headers, a shared sample once', async () => {
    const [header, ...samples] = await demoLines();
    const first = path.join(work, 'r.jsonl.1');
    const second = path.join(work, 'r.jsonl');
    writeFileSync(first, [header, ...samples.slice(0, 61)].join('\n') + '\n');
    writeFileSync(second, gzipSync([JSON.stringify({ ...JSON.parse(header!), startedAt: JSON.parse(samples[60]!).takenAt }), ...samples.slice(60)].join('\n') + '\n'));
    const read = await streamed([second, first]);
    expect(read.samples.map((s) => (s as { takenAt: string }).takenAt)).toEqual(samples.map((s) => JSON.parse(s).takenAt));
    expect(read.warnings).toEqual([]);
  });

  it('warns of a torn last line, a line that is not JSON and samples out of order, and hands the rest on', async () => {
    const [header, ...samples] = await demoLines();
    const file = path.join(work, 'messy.jsonl');
    writeFileSync(file, [header, samples[1], samples[0], '{"not":', ...samples.slice(2, 10)].join('\n') + '\n' + samples[10]!.slice(0, 100));
    const read = await streamed([file]);
    expect(read.samples).toHaveLength(10);
    expect(read.warnings).toEqual([
      `${file}: line 4 is not JSON; skipped`,
      `${file}: line 13 is incomplete (the recorder stopped mid-write); skipped`,
      `${file}: samples are out of time order (line 3 is earlier than the line before it); read in time order`,
    ]);
  });

  it('refuses what the whole-file reader refuses, with the same words', async () => {
    const [header] = await demoLines();
    const cases: [string, string | Buffer, RegExp][] = [
      ['empty', '', /is not a gpu-layers recording: the file is empty/],
      ['binary', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0, 1, 2, 3]), /is not a gpu-layers recording: it is a binary file/],
      ['newer', JSON.stringify({ ...JSON.parse(header!), schemaVersion: SAMPLE_SCHEMA_VERSION + 1 }) + '\n', /upgrade gpu-layers to read it/],
      ['csv', 'time,used\n1,2\n', /its first line is not a recording header/],
      ['damaged.gz', Buffer.concat([gzipSync(header + '\n'.repeat(10)).subarray(0, 12), Buffer.from('garbage garbage')]), /damaged gzip file/],
    ];
    for (const [name, content, expected] of cases) {
      const file = path.join(work, `bad-${name}`);
      writeFileSync(file, content);
      expect((await errorOf([file])).message, name).toMatch(expected);
    }
    expect(await errorOf([work])).toMatchObject({ code: 'RECORDING_UNREADABLE', message: expect.stringMatching(/it is a folder/) });
    expect(await errorOf([path.join(work, 'missing')])).toMatchObject({ code: 'RECORDING_UNREADABLE', message: expect.stringMatching(/no such file or folder/) });
  });

  it('refuses a FIFO and a device instead of waiting on them', async () => {
    const fifo = path.join(work, 'fifo.jsonl');
    execFileSync('mkfifo', [fifo]);
    for (const file of [fifo, '/dev/zero']) {
      // A reader that waited on the FIFO would hold its open: a writer's open ends the wait, and
      // the outcome says it waited.
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise((resolve) => {
        timer = setTimeout(() => {
          try {
            closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
          } catch {
            // No reader waiting: nothing to end.
          }
          resolve('waited on it');
        }, 5_000);
      });
      const outcome = await Promise.race([errorOf([file]), waited]);
      clearTimeout(timer);
      expect(outcome, file).toMatchObject({ code: 'RECORDING_UNREADABLE', message: expect.stringMatching(/not a regular file/) });
    }
  });

  it('counts lines across runs of empty lines and chunk boundaries, and joins a line split over chunks', async () => {
    const [header, ...samples] = await demoLines();
    const long = JSON.stringify({ takenAt: '2026-01-01T00:00:00.000Z', pad: 'x'.repeat(600_000) });
    const blank = 300_000;
    const text = [header, samples[0], '\n'.repeat(blank - 1), '{"not":', long, samples[1]].join('\n') + '\n';
    const expected = `line ${3 + blank} is not JSON; skipped`;
    for (const [name, content] of [['blank.jsonl', text], ['blank.jsonl.gz', gzipSync(text)]] as const) {
      const file = path.join(work, name);
      writeFileSync(file, content);
      const read = await streamed([file]);
      expect(read.warnings[0], name).toBe(`${file}: ${expected}`);
      expect(read.samples.map((s) => (s as { takenAt: string }).takenAt), name).toEqual([JSON.parse(samples[0]!).takenAt, '2026-01-01T00:00:00.000Z', JSON.parse(samples[1]!).takenAt]);
      expect((read.samples[1] as { pad: string }).pad, name).toHaveLength(600_000);
    }
  });

  it('holds no file open for a caller that reads only the header, and refuses no files at all', async () => {
    const file = path.join(work, 'header-only.jsonl.gz');
    copyFileSync(demo, file);
    const openFiles = () => readdirSync('/proc/self/fd').flatMap((fd) => {
      try {
        return [readlinkSync(`/proc/self/fd/${fd}`)];
      } catch {
        return [];
      }
    });
    const stream = await streamRecording([file], () => {});
    expect(stream.header.format).toBe('gpu-layers-recording');
    expect(openFiles()).not.toContain(file);
    expect(await errorOf([])).toMatchObject({ code: 'INVALID_OPTIONS' });
  });
});
