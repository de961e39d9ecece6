/**
 * Fuzzing the companion file reader ($GPU_LAYERS_STATS_DIR/<pid>.json): valid documents mutated
 * as JSON (hostile numbers such as 1e309 and 1e15, wrong types, deleted and duplicated keys,
 * __proto__, deep nesting; the OOM's snapshot name among them) and as bytes (torn, invalid UTF-8, BOM, NUL), and random bytes. Each
 * must end in a COMPANION_* reason or in a document whose allocator layer the sample schema
 * accepts, within a bound; files too large or not regular are refused without being read.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';

import { computeGaps } from '../../src/layers/gaps.js';
import { allocatorLayerSchema, gapsSchema, type AllocatorLayer } from '../../src/layers/schema.js';
import { allocatorLayerOf } from '../../src/layers/allocator-layer.js';
import { checkCompanion, companionOomSnapshotPath, readCompanion, type CompanionFile, type CompanionResult } from '../../src/sources/companion.js';
import { repoRoot } from '../helpers/paths.js';
import { assertNoPollution, CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, mutatedJsonText, mutatedOrRandom, timed, timedAsync } from '../helpers/fuzz.js';

const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-companion-fuzz-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

const real = JSON.parse(readFileSync(path.join(repoRoot, 'test/fixtures/real/h200-companion.json'), 'utf8')) as CompanionFile;
const UUID = 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17';
// Two devices, one without a UUID (old torch), segment figures present and absent.
const handMade: CompanionFile = {
  format: 'gpu-layers-companion',
  version: 1,
  pid: 4242,
  startTimeTicks: 987654,
  writtenAt: 1_795_725_811.5,
  intervalSeconds: 2,
  torchVersion: null,
  devices: [
    {
      index: 0,
      uuid: UUID.slice(4),
      name: 'NVIDIA H100 80GB HBM3',
      stats: { 'reserved_bytes.all.current': 6000, 'allocated_bytes.all.current': 4000, num_ooms: 0, num_alloc_retries: 1 },
      privatePoolBytes: 700,
      largestFreeBlockBytes: null,
      privatePoolAllocatedBytes: 10,
    },
    { index: 1, uuid: null, name: null, stats: {}, privatePoolBytes: null },
  ],
  // The last CUDA out-of-memory, with its snapshot's file name (GPU_LAYERS_OOM_SNAPSHOT=1).
  oom: {
    count: 3,
    at: 1_795_725_810.25,
    device: 1,
    requestedBytes: 2 ** 62,
    deviceTotalBytes: 85_899_345_920,
    deviceFreeBytes: 314_572_800,
    snapshot: '4242.oom-1.pickle',
    snapshotError: 'not taken: within 1 s of the last OOM written (an OOM storm: at most one write a second)',
  },
  errors: ['memory_stats failed on device 2'],
};
const documents = [real, handMade];

const CODES = new Set(['COMPANION_INVALID', 'COMPANION_OTHER_PROCESS', 'COMPANION_STALE', 'COMPANION_UNREADABLE', 'COMPANION_MISSING']);

/** The result must be a typed reason, or a document every device of which gives a valid layer. */
function checkResult(result: CompanionResult): void {
  if (!result.ok) {
    expect(CODES.has(result.error.code), `${result.error.code}: ${result.error.message}`).toBe(true);
    expect(typeof result.error.message).toBe('string');
    return;
  }
  // An OOM snapshot it names lies in the folder the file was read from, whatever the mutation.
  const oom = result.document.oom;
  if (oom != null && oom.snapshot !== null) {
    const snapshot = companionOomSnapshotPath(result.file, oom)!;
    expect(path.dirname(snapshot)).toBe(path.dirname(result.file));
    expect(path.basename(snapshot)).toBe(oom.snapshot);
    expect(oom.snapshot.startsWith(`${result.document.pid}.`)).toBe(true);
  }
  const uuids = [UUID, real.devices[0]!.uuid, null, 'GPU-ffffffff-ffff-ffff-ffff-ffffffffffff', ...result.document.devices.map((d) => d.uuid)];
  for (const uuid of uuids) {
    const layer = allocatorLayerOf(result, uuid);
    if ('code' in layer) {
      expect(layer.code).toBe('COMPANION_NO_DEVICE');
    } else {
      const parsed = allocatorLayerSchema.safeParse(layer);
      expect(parsed.success, `${JSON.stringify(layer)}: ${parsed.error?.message}`).toBe(true);
      // The gaps computed from it, against what NVML and the calibration may say, are valid too.
      for (const [driverBytes, contextBytes] of [[null, null], [0, 0], [80 * 2 ** 30, 512 * 2 ** 20]] as const) {
        const gaps = computeGaps({ driverBytes, contextBytes, allocator: layer, framework: null }, {});
        const parsedGaps = gapsSchema.safeParse(gaps);
        expect(parsedGaps.success, `${JSON.stringify(layer)} -> ${JSON.stringify(gaps)}: ${parsedGaps.error?.message}`).toBe(true);
      }
    }
  }
}

/** Checks a text as the reader would: "now" just after the original was written, so it is fresh. */
function check(text: string, document: CompanionFile, startTime: number | null): CompanionResult {
  return checkCompanion('/stats/x.json', text, document.pid, startTime, document.writtenAt * 1000 + 500);
}

describe('checkCompanion and allocatorLayerOf', () => {
  it('mutated documents: a COMPANION_* reason or a layer the schema accepts', { timeout: FUZZ_TIMEOUT_MS }, () => {
    let refused = 0;
    let accepted = 0;
    fc.assert(
      fc.property(fc.nat(1).chain((which) => fc.tuple(fc.constant(which), mutatedJsonText([documents[which]]), fc.boolean())), ([which, text, withStartTime]) => {
        const document = documents[which]!;
        const { value, cpuMs } = timed(() => {
          const result = check(text, document, withStartTime ? document.startTimeTicks : null);
          checkResult(result);
          return result;
        });
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        assertNoPollution();
        if (value.ok) accepted++;
        else refused++;
      }),
      fuzzParams(600),
    );
    // Both outcomes happen: a mutation of an unused field leaves a valid file.
    expect(refused).toBeGreaterThan(0);
    expect(accepted).toBeGreaterThan(0);
  });

  it('random and byte-mutated text: a reason, never an exception', { timeout: FUZZ_TIMEOUT_MS }, () => {
    const seeds = documents.map((d) => Buffer.from(JSON.stringify(d)));
    fc.assert(
      fc.property(mutatedOrRandom(seeds), (bytes) => {
        const { cpuMs } = timed(() => checkResult(check(bytes.toString('utf8'), real, null)));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
      }),
      fuzzParams(300),
    );
  });

  it.each([
    ['a writtenAt past the Date range (year 318857)', { writtenAt: 1e13 }],
    ['a writtenAt of -1e13', { writtenAt: -1e13 }],
    ['a writtenAt of 1.7e308 with an interval as large', { writtenAt: 1.7e308, intervalSeconds: 1.7e308 }],
  ])('%s is refused as COMPANION_INVALID, not a RangeError', (_name, overrides) => {
    const document = { ...handMade, ...overrides };
    const result = checkCompanion('/stats/x.json', JSON.stringify(document), document.pid, null, Date.UTC(2026, 10, 26));
    expect(result).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID' } });
  });

  it('figures near 2^53 give gaps that are null with a reason, not inexact', () => {
    const huge = 2 ** 53 - 1;
    const device = { ...handMade.devices[0]!, stats: { 'reserved_bytes.all.current': 0, 'allocated_bytes.all.current': huge }, privatePoolBytes: huge, privatePoolAllocatedBytes: 0 };
    const document = { ...handMade, devices: [device] };
    const result = check(JSON.stringify(document), document, null);
    expect(result.ok).toBe(true);
    checkResult(result);
    const layer = allocatorLayerOf(result as Extract<CompanionResult, { ok: true }>, UUID);
    const errors = {};
    const gaps = computeGaps({ driverBytes: 0, contextBytes: 0, allocator: layer as AllocatorLayer, framework: null }, errors);
    // 0 - (2^53 - 1) - (2^53 - 1): no size.
    expect(gaps.allocatorCachedBytes).toBeNull();
    expect(errors).toMatchObject({ 'gaps.allocatorCachedBytes': { code: 'VALUE_OUT_OF_RANGE' } });
  });
});

/** A process of this test's user whose start time /proc does not show. */
const ownProcess = { startTimeTicks: null, writerUids: [process.geteuid!()] };

describe('readCompanion on files', () => {
  it('mutated files on disk: a reason or a valid document, never an exception', { timeout: FUZZ_TIMEOUT_MS }, async () => {
    const dir = path.join(work, 'mutated');
    mkdirSync(dir);
    const seeds = documents.map((d) => Buffer.from(JSON.stringify(d)));
    await fc.assert(
      fc.asyncProperty(mutatedOrRandom(seeds), async (bytes) => {
        writeFileSync(path.join(dir, '4242.json'), bytes);
        const { value, cpuMs } = await timedAsync(() => readCompanion(dir, 4242, ownProcess, handMade.writtenAt * 1000 + 500));
        expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
        checkResult(value);
      }),
      fuzzParams(100),
    );
  });

  it('a 1 GiB file is refused without being read into memory', async () => {
    const dir = path.join(work, 'huge');
    mkdirSync(dir);
    const file = path.join(dir, '4242.json');
    writeFileSync(file, JSON.stringify(handMade));
    truncateSync(file, 2 ** 30); // sparse: no disk used
    const before = process.resourceUsage().maxRSS;
    const { value, cpuMs } = await timedAsync(() => readCompanion(dir, 4242, ownProcess, Date.now()));
    expect(value).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/larger than/) } });
    expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
    // maxRSS is the peak in KiB: reading the file would have added a GiB.
    expect(process.resourceUsage().maxRSS - before).toBeLessThan(64 * 1024);
  });

  it('a FIFO named <pid>.json is refused at once, not waited on', async () => {
    const dir = path.join(work, 'fifo');
    mkdirSync(dir);
    const fifo = path.join(dir, '4242.json');
    execFileSync('mkfifo', [fifo]);
    const hang = Symbol('hang');
    let timer: NodeJS.Timeout | undefined;
    const result = await Promise.race([readCompanion(dir, 4242, ownProcess, Date.now()), new Promise((resolve) => (timer = setTimeout(() => resolve(hang), 3000)))]);
    clearTimeout(timer);
    if (result === hang) {
      // Unblock the reader stuck in open(2) or read(2) so the worker can exit, then fail.
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    }
    expect(result).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/not a regular file/) } });
  });
});
