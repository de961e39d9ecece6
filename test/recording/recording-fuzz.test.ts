/**
 * Fuzzing the recordings: round trips through the real writer (samples with any numbers and any
 * command line, rotation across parts, a write torn by a crash and the recording continued) back
 * through the reader; recordings mutated line by line, as JSON and as bytes, gzip streams
 * damaged, and random bytes, each ending in samples the schema accepts with warnings, or in a
 * RECORDING_* error, within a bound; a gzip that inflates past the limit refused in bounded memory.
 */
import { appendFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { isGpuLayersError } from '../../src/errors.js';
import { layeredSampleSchema, type LayeredSample } from '../../src/layers/schema.js';
import { parseRecording, readRecording, readRecordings, type Recording } from '../../src/recording/read-recording.js';
import { RecordingWriter } from '../../src/recording/write-recording.js';
import { GiB, INTERVAL_MS, layeredDevice, layeredProcess, layeredSample, MiB, recordingHeader, START_MS, UUID0, UUID1, type ProcessReading } from '../helpers/report-recording.js';
import { byteMutation, CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, jsonMutation, mutateBytes, mutateJson, timed, timedAsync } from '../helpers/fuzz.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-recording-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let runs = 0;
const fresh = () => {
  const dir = path.join(work, `run-${runs++}`);
  mkdirSync(dir);
  return dir;
};

const bytes = fc.integer({ min: 0, max: 140 * GiB });
const reading: fc.Arbitrary<ProcessReading> = fc.record({
  pid: fc.integer({ min: 1, max: 4_194_304 }),
  // Any text a /proc cmdline can hold once read as UTF-8, hostile markup and lone surrogates too.
  command: fc.option(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.constantFrom('<script>alert(1)</script>', '\uD800', 'a\nb\r\n', '\u2028', '"}\n{"'))),
  // At most three of these and 4 GiB unaccounted fit the device (free memory is never negative).
  driverBytes: fc.option(fc.integer({ min: 0, max: 20 * GiB })),
  contextBytes: fc.option(fc.integer({ min: 0, max: 2 * GiB })),
  allocator: fc.option(fc.record({ reserved: bytes, allocated: bytes, privatePools: fc.option(bytes), inactiveSplit: bytes })),
  kvCacheBytes: fc.option(bytes, { nil: undefined }),
  host: fc.option(fc.record({ anon: bytes, file: bytes, shmem: bytes, driverMapped: bytes, startTimeTicks: fc.maxSafeNat() })),
});
/** Samples in time order with distinct times (readRecordings keeps one sample per takenAt). */
const samples: fc.Arbitrary<LayeredSample[]> = fc
  .array(fc.tuple(fc.array(reading, { maxLength: 3 }), fc.array(reading, { maxLength: 2 }), fc.integer({ min: 0, max: 4 * GiB })), { minLength: 1, maxLength: 8 })
  .map((list) => list.map(([gpu0, gpu1, unaccounted], i) => layeredSample(START_MS + i * INTERVAL_MS, [layeredDevice(0, UUID0, gpu0.map(layeredProcess), unaccounted), layeredDevice(1, UUID1, gpu1.map(layeredProcess), 100 * MiB)])));

function header() {
  return recordingHeader();
}

describe('round trips through the writer', () => {
  it('what the writer wrote, the reader reads back, gzip or not', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(samples, async (written) => {
        const file = path.join(fresh(), 'r.jsonl');
        const writer = new RecordingWriter(file, header);
        for (const sample of written) writer.append(sample);
        writer.close();
        const read = await readRecording(file);
        expect(read).toEqual({ header: header(), samples: written, warnings: [] });
        writeFileSync(`${file}.gz`, gzipSync(readFileSync(file)));
        expect(await readRecording(`${file}.gz`)).toEqual({ header: header(), samples: written, warnings: [] });
      }),
      fuzzParams(40),
    );
  });

  it('a recording rotated across parts reads back whole, the parts in any order', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(samples, fc.integer({ min: 1_000, max: 40_000 }), fc.boolean(), async (written, maxBytes, reverse) => {
        const file = path.join(fresh(), 'r.jsonl');
        const writer = new RecordingWriter(file, header, { maxBytes, keep: 100 });
        for (const sample of written) writer.append(sample);
        writer.close();
        const parts = [file, ...Array.from({ length: 100 }, (_, i) => `${file}.${i + 1}`)].filter((f) => existsSync(f));
        const read = await readRecordings(reverse ? parts.reverse() : parts);
        expect(read.samples).toEqual(written);
        expect(read.warnings).toEqual([]);
      }),
      fuzzParams(30),
    );
  });

  it('a write torn by a crash costs only the torn line, and the recording continues', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    await fc.assert(
      fc.asyncProperty(samples, samples, fc.nat(), async (before, after, cut) => {
        const file = path.join(fresh(), 'r.jsonl');
        const writer = new RecordingWriter(file, header);
        for (const sample of before) writer.append(sample);
        writer.close();
        // SIGKILL in the middle of write(2): part of the next line, no newline.
        const torn = JSON.stringify(after[0]);
        appendFileSync(file, torn.slice(0, 1 + (cut % (torn.length - 1))));
        const torn1 = await readRecording(file);
        expect(torn1.samples).toEqual(before);
        expect(torn1.warnings).toEqual([expect.stringMatching(/incomplete/)]);
        const later = after.map((s, i) => ({ ...s, takenAt: new Date(START_MS + (before.length + i) * INTERVAL_MS).toISOString() }));
        const continued = new RecordingWriter(file, header);
        for (const sample of later) continued.append(sample);
        continued.close();
        expect(await readRecording(file)).toEqual({ header: header(), samples: [...before, ...later], warnings: [] });
      }),
      fuzzParams(30),
    );
  });
});

/** A recording, or a RECORDING_* error; every sample one the schema accepts. */
function checkRecording(read: () => Recording): void {
  let recording: Recording;
  try {
    recording = read();
  } catch (error) {
    if (!isGpuLayersError(error) || !error.code.startsWith('RECORDING_')) throw error;
    return;
  }
  for (const sample of recording.samples) expect(layeredSampleSchema.safeParse(sample).success).toBe(true);
  for (const warning of recording.warnings) expect(typeof warning).toBe('string');
  expect(recording.warnings.length).toBeLessThanOrEqual(8);
}

describe('mutated and random recordings', () => {
  const base = [recordingHeader(), ...Array.from({ length: 3 }, (_, i) => layeredSample(START_MS + i * INTERVAL_MS, [layeredDevice(0, UUID0, [layeredProcess({ pid: 4242, command: 'vllm serve', driverBytes: 10 * GiB, contextBytes: 512 * MiB, allocator: { reserved: 8 * GiB, allocated: 6 * GiB, privatePools: 0, inactiveSplit: 0 }, kvCacheBytes: GiB, host: null })], 0)]))];
  const baseText = `${base.map((line) => JSON.stringify(line)).join('\n')}\n`;

  it('lines mutated as JSON (hostile numbers, keys, nesting), then as bytes: samples or a typed error', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let kept = 0;
    let skipped = 0;
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.tuple(fc.nat(base.length - 1), fc.array(jsonMutation, { minLength: 1, maxLength: 3 })), { maxLength: 3, selector: ([line]) => line }),
        fc.array(byteMutation, { maxLength: 2 }),
        fc.constantFrom('\n', '\r\n'),
        (lineMutations, byteMutations, eol) => {
          const lines = base.map((line) => JSON.stringify(line));
          for (const [index, mutations] of lineMutations) lines[index] = mutateJson(JSON.parse(lines[index]!), mutations);
          const text = mutateBytes(Buffer.from(`${lines.join(eol)}${eol}`), byteMutations).toString('utf8');
          const { cpuMs } = timed(() =>
            checkRecording(() => {
              const recording = parseRecording(text, 'r.jsonl');
              kept += recording.samples.length;
              skipped += recording.warnings.length;
              return recording;
            }),
          );
          expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        },
      ),
      fuzzParams(200),
    );
    expect(kept).toBeGreaterThan(0);
    expect(skipped).toBeGreaterThan(0);
  });

  it('random text, and random bytes as a file: a typed error or a recording', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const file = path.join(fresh(), 'random.jsonl');
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 4096 }).map((a) => Buffer.from(a)), fc.string({ unit: 'binary', maxLength: 300 }).map((s) => Buffer.from(`${JSON.stringify(recordingHeader())}\n${s}`))), async (content) => {
        checkRecording(() => parseRecording(content.toString('utf8'), 'r'));
        writeFileSync(file, content);
        await readRecording(file).then(
          (recording) => checkRecording(() => recording),
          (error: unknown) => checkRecording(() => {
            throw error;
          }),
        );
      }),
      fuzzParams(100),
    );
  });

  it('damaged gzip streams: a typed error or what the damage left, within the bound', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const file = path.join(fresh(), 'damaged.jsonl.gz');
    const gzipped = gzipSync(baseText);
    await fc.assert(
      fc.asyncProperty(fc.array(byteMutation, { minLength: 1, maxLength: 3 }), fc.boolean(), async (mutations, concatenated) => {
        const damaged = mutateBytes(gzipped, mutations);
        // Keep the magic so that the file is read as gzip.
        writeFileSync(file, Buffer.concat([Buffer.from([0x1f, 0x8b]), damaged.subarray(2), concatenated ? gzipped : Buffer.alloc(0)]));
        const { value: outcome, cpuMs } = await timedAsync(() => readRecording(file).then((r) => r, (error: unknown) => error));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        checkRecording(() => {
          if (outcome instanceof Error) throw outcome;
          return outcome as Recording;
        });
      }),
      fuzzParams(100),
    );
  });
});

describe('limits', () => {
  it('a gzip that inflates to 1 GiB is refused, in memory bounded by the limit', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    // Gzip members concatenated: 1 KiB of gzip per MiB of newlines.
    const member = gzipSync(Buffer.alloc(1024 * 1024, 0x0a));
    const file = path.join(fresh(), 'bomb.jsonl.gz');
    writeFileSync(file, Buffer.concat([gzipSync(`${JSON.stringify(recordingHeader())}\n`), ...Array.from({ length: 1024 }, () => member)]));
    const before = process.resourceUsage().maxRSS;
    await expect(readRecording(file)).rejects.toMatchObject({ code: 'RECORDING_UNREADABLE', message: expect.stringMatching(/more than \d+ bytes/) });
    // maxRSS is the peak in KiB: the limit (512 MiB) and a little, not the whole GiB (or two).
    expect(process.resourceUsage().maxRSS - before).toBeLessThan(700 * 1024);
  });

  it('a plain recording larger than the limit is refused before it is read', async () => {
    const file = path.join(fresh(), 'huge.jsonl');
    writeFileSync(file, `${JSON.stringify(recordingHeader())}\n`);
    truncateSync(file, 2 ** 30); // sparse: no disk used
    const before = process.resourceUsage().maxRSS;
    const { cpuMs } = await timedAsync(() => expect(readRecording(file)).rejects.toMatchObject({ code: 'RECORDING_UNREADABLE', message: expect.stringMatching(/more than \d+ bytes/) }));
    expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
    expect(process.resourceUsage().maxRSS - before).toBeLessThan(64 * 1024);
  });
});
