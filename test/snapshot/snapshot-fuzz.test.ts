/**
 * Fuzzing the snapshot reader (fast-check, bounded in runs and time): valid snapshots of every
 * protocol with bytes changed, inserted, duplicated or cut. Every input must end, either in a
 * report the schema accepts or in SNAPSHOT_INVALID: no other exception, no hang, no crash.
 * Set GPU_LAYERS_FUZZ_RUNS for a longer run locally. And snapshots that repeat one segment and one
 * block by reference, any number of times: exact figures or the named refusal, in bounded time.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, expect, it } from 'vitest';

import { isGpuLayersError } from '../../src/errors.js';
import { analyzeSnapshot } from '../../src/snapshot/analyze-snapshot.js';
import { snapshotReportSchema } from '../../src/snapshot/snapshot-report-schema.js';
import { python, repoRoot } from '../helpers/paths.js';
import { sharedReferences } from './hostile-pickles.js';

let work: string;
const seeds: Buffer[] = [];
const RUNS = Number(process.env.GPU_LAYERS_FUZZ_RUNS ?? 400);

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-snapshot-fuzz-'));
  const run = spawnSync(python, [path.join(repoRoot, 'scripts/oracles/generate_snapshot.py'), work, '--seed', '7'], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`generate_snapshot.py failed: ${run.stderr}`);
  for (const protocol of [2, 4, 5]) seeds.push(readFileSync(path.join(work, `snapshot.p${protocol}.pickle`)));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

type Mutation =
  | { kind: 'set'; at: number; byte: number }
  | { kind: 'insert'; at: number; bytes: number[] }
  | { kind: 'duplicate'; at: number; length: number }
  | { kind: 'cut'; at: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat(), length: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
);

function mutate(seed: Buffer, mutations: Mutation[]): Buffer {
  let bytes = Buffer.from(seed);
  for (const m of mutations) {
    const at = m.at % Math.max(1, bytes.length);
    if (m.kind === 'set') bytes[at] = m.byte;
    else if (m.kind === 'insert') bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from(m.bytes), bytes.subarray(at)]);
    else if (m.kind === 'duplicate') bytes = Buffer.concat([bytes.subarray(0, at + m.length), bytes.subarray(at)]);
    else bytes = bytes.subarray(0, at);
  }
  return bytes;
}

it('every mutated snapshot ends in a valid report or SNAPSHOT_INVALID', { timeout: 120_000 }, async () => {
  let refused = 0;
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 0, max: 2 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.integer({ min: 1, max: 4096 }), async (which, mutations, chunkBytes) => {
      const input = mutate(seeds[which]!, mutations);
      try {
        const report = await analyzeSnapshot(input, { chunkBytes });
        expect(snapshotReportSchema.safeParse(report).success).toBe(true);
      } catch (error) {
        if (!isGpuLayersError(error) || error.code !== 'SNAPSHOT_INVALID') throw error;
        refused++;
      }
    }),
    { numRuns: RUNS, interruptAfterTimeLimit: 60_000 },
  );
  // Mutations that leave a valid snapshot exist (a changed size), but most break something.
  expect(refused).toBeGreaterThan(0);
});

it('a segment and a block repeated by reference: every reference counted, or refused when they outnumber the bytes', { timeout: 120_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 1, max: 200_000 }), fc.integer({ min: 1, max: 8192 }), async (segments, blocks, blockSize) => {
      const bytes = sharedReferences(segments, blocks, blockSize);
      const started = process.cpuUsage();
      try {
        const report = await analyzeSnapshot(bytes);
        expect(segments * blocks).toBeLessThanOrEqual(bytes.length);
        expect(report.devices[0]).toMatchObject({ segmentCount: segments, reservedBytes: segments * blocks * blockSize, freeBytes: segments * blocks * blockSize, largestFreeBlockBytes: blockSize });
      } catch (error) {
        if (!isGpuLayersError(error) || error.code !== 'SNAPSHOT_INVALID') throw error;
        expect(error.message).toMatch(/the pickle repeats blocks by reference/);
        expect(segments * blocks).toBeGreaterThan(bytes.length);
      }
      // Counting stops near the file's size in blocks, whatever the product.
      const cpu = process.cpuUsage(started);
      expect((cpu.user + cpu.system) / 1000).toBeLessThan(2_000);
    }),
    { numRuns: Math.min(RUNS, 60), interruptAfterTimeLimit: 60_000 },
  );
});
