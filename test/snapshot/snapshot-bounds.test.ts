/**
 * Pickles CPython loads in a second that must not break the snapshot reader (issue 19, finding
 * 8): one segment and one block repeated by reference (1M x 1M in 2 MB: hours of counting),
 * one list of millions of DUPs (past V8's array limit the process aborts), millions of memo
 * entries (past 2^24 a Map throws), thousands of trace lists or a device number no PyTorch has.
 * Each ends in SNAPSHOT_INVALID naming the cause (exit 4, one line, from the CLI) or in exact
 * figures, in bounded time. CPython, as a control, loads each of them.
 *
 * Checked by hand at full size (see the report of finding 8): a 145 MB list of DUPs and a memo of
 * 2^24 + 1 fetched entries (117 MB); here the same bounds are shown on smaller files.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { AllocSizes } from '../../src/snapshot/alloc-sizes.js';
import { analyzeSnapshot } from '../../src/snapshot/analyze-snapshot.js';
import { PickleReader } from '../../src/snapshot/pickle-reader.js';
import { SnapshotAnalysis } from '../../src/snapshot/snapshot-analysis.js';
import { runCli } from '../helpers/cli.js';
import { python } from '../helpers/paths.js';
import { PickleBytes, longList, manyMemoEntries, manyTraceLists, repeatedTraceEntry, sharedReferences } from './hostile-pickles.js';

let work: string;
const file = (name: string, bytes: Buffer): string => {
  const where = path.join(work, name);
  writeFileSync(where, bytes);
  return where;
};

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-snapshot-bounds-'));
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** CPython's pickle loads the file: the input is one a reader must cope with. */
function cpythonLoads(where: string): void {
  const run = spawnSync(python, ['-c', 'import pickle, sys; pickle.load(open(sys.argv[1], "rb"))', where], { encoding: 'utf8', timeout: 20_000 });
  expect(run.status, run.stderr).toBe(0);
}

function expectRefusedByCli(where: string, message: RegExp): void {
  const run = runCli(['snapshot', where]);
  expect(run.status, run.stderr).toBe(4);
  expect(run.stderr).toMatch(message);
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  expect(run.stdout).toBe('');
}

describe('shared references', () => {
  const REPEATS = /more blocks \(\d+\) than the file has bytes \(\d+\), so the pickle repeats blocks by reference/;

  it('1 million segments x 1 million blocks by reference (2 MB): refused in seconds, not hours', { timeout: 30_000 }, async () => {
    const bytes = sharedReferences(1_000_000, 1_000_000);
    expect(bytes.length).toBeLessThan(2_100_000);
    const where = file('shared.pickle', bytes);
    cpythonLoads(where);
    const started = process.cpuUsage();
    await expect(analyzeSnapshot(bytes)).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', message: expect.stringMatching(REPEATS) });
    const cpu = process.cpuUsage(started);
    // Three segments of 1M blocks are counted before the bound stops it; counting them all would take hours.
    expect((cpu.user + cpu.system) / 1e6).toBeLessThan(10);
    expectRefusedByCli(where, REPEATS);
  });

  it('fewer references than bytes: counted as CPython counts them, every reference', async () => {
    const report = await analyzeSnapshot(sharedReferences(10, 7, 512));
    expect(report.devices).toHaveLength(1);
    expect(report.devices[0]).toMatchObject({ segmentCount: 10, reservedBytes: 10 * 7 * 512, freeBytes: 10 * 7 * 512, largestFreeBlockBytes: 512, allocatedBytes: 0 });
  });
});

describe('long lists', () => {
  it('a list past the limit is refused, naming the limit and the offset', async () => {
    await expect(analyzeSnapshot(longList(1001), { limits: { maxListItems: 1000 } })).rejects.toMatchObject({
      code: 'SNAPSHOT_INVALID',
      message: expect.stringMatching(/a list of more than 1000 items, longer than any a memory snapshot holds .* at offset \d+/),
    });
    expect((await analyzeSnapshot(longList(1000), { limits: { maxListItems: 1000 } })).devices).toEqual([]);
  });

  it('2^24 + 1 DUPs into one list (17 MB): exit 4 at the default limit, before V8 runs out of array', { timeout: 30_000 }, () => {
    const where = file('long-list.pickle', longList(2 ** 24 + 1));
    cpythonLoads(where);
    expectRefusedByCli(where, /a list of more than 16777216 items/);
  });

  it('a trace entry repeated by reference is counted every time, in constant memory', async () => {
    const report = await analyzeSnapshot(repeatedTraceEntry(200_000, 4096));
    // Streamed: the entries reach the analysis one batch at a time (at 145 MB, before the runs, a plain array of sizes aborted V8).
    expect(report.devices[0]!.recentRequests).toEqual({ count: 200_000, largestBytes: 4096, overLargestAllocatable: 200_000 });
  });

  it('alloc sizes in runs count what a plain list would', () => {
    const sizes = [5, 5, 5, 9, 9, 1, 5, 5, 12, 12, 12, 12, 3];
    const runs = new AllocSizes();
    for (const size of sizes) runs.add(size);
    expect(runs.count).toBe(sizes.length);
    expect(runs.largest).toBe(12);
    for (const bound of [0, 3, 5, 9, 11, 12]) expect(runs.countOver(bound)).toBe(sizes.filter((s) => s > bound).length);
  });
});

describe('the memo', () => {
  it('2^24 + 1 entries kept (17 MB): no Map limit', { timeout: 30_000 }, () => {
    const bytes = manyMemoEntries(2 ** 24 + 1);
    // Without the first pass's bit set, every entry is kept.
    const reader = new PickleReader({ keepMemo: null, totalBytes: bytes.length });
    reader.decode(bytes, 0);
    expect(reader.done).toBe(true);
    expect(reader.result).toBeNull();
  });

  it('a memo index past the bytes before it is no pickler\'s: refused, named', async () => {
    const put = Buffer.from([0x72, 0, 0, 0, 0x40]); // LONG_BINPUT 2^30
    const bytes = new PickleBytes().op(0x7d).raw(put).build();
    await expect(analyzeSnapshot(bytes)).rejects.toMatchObject({
      code: 'SNAPSHOT_INVALID',
      message: expect.stringMatching(/LONG_BINPUT \(0x72 'r'\) of memo index 1073741824, more entries than the pickle has bytes before it at offset 3/),
    });
  });

  it('entries fetched again keep their values whatever their indices', async () => {
    // BINPUT 0, 7, 9 and 100 hold 'a', 'b', 'x' and 'c'; only 0, 7 and 100 are fetched again (the
    // bit set), and the dict {a: 1, b: 2, c: 3} is built from them: places by rank, across bytes
    // and across the 64-index blocks of the rank table.
    const p = new PickleBytes().op(0x7d);
    for (const [index, key] of [[0, 'a'], [7, 'b'], [9, 'x']] as const) p.str(key).op(0x71, index, 0x30);
    p.str('.'.repeat(100)).op(0x30).str('c').op(0x71, 100, 0x30);
    p.op(0x68, 0).int(1).op(0x73).op(0x68, 7).int(2).op(0x73).op(0x68, 100).int(3).op(0x73);
    const keep = new Uint8Array(13);
    keep[0] = 0b1000_0001;
    keep[12] = 0b1_0000;
    const reader = new PickleReader({ keepMemo: keep });
    reader.decode(p.build(), 0);
    expect({ ...(reader.result as object) }).toEqual({ a: 1, b: 2, c: 3 });
    const unkept = new PickleBytes().op(0x7d).str('x').op(0x71, 5).op(0x68, 5).build();
    expect(() => new PickleReader({ keepMemo: keep }).decode(unkept, 0)).toThrow(/BINGET \(0x68 'h'\) of memo entry 5, which was never stored/);
  });
});

describe('devices', () => {
  it.each([
    ['made one by one', false],
    ['made in a batch', true],
  ])('device_traces with more lists than PyTorch has device numbers (%s): refused', async (_, batched) => {
    const where = file(`trace-lists-${batched}.pickle`, manyTraceLists(32_769, batched));
    cpythonLoads(where);
    await expect(analyzeSnapshot(where)).rejects.toMatchObject({ code: 'SNAPSHOT_INVALID', message: expect.stringMatching(/device_traces has more than 32768 lists/) });
    expect((await analyzeSnapshot(manyTraceLists(32_768, batched))).devices).toEqual([]);
  });

  it('a segment on device 40000: refused, named', () => {
    const analysis = new SnapshotAnalysis();
    expect(() => analysis.segment(dict({ device: 40_000, total_size: 0, blocks: [] }))).toThrow(/segments\[0\]\.device is 40000: PyTorch numbers devices with a 16-bit integer/);
  });

  it('distinct allocation sites and private pools are bounded', () => {
    const sites = new SnapshotAnalysis({ maxAllocationSites: 2 });
    const block = (line: number) => dict({ size: 512, state: 'active_allocated', frames: [dict({ filename: 'model.py', line, name: 'forward' })] });
    sites.segment(dict({ device: 0, total_size: 1024, blocks: [block(1), block(2), block(1)] }));
    expect(() => sites.segment(dict({ device: 0, total_size: 512, blocks: [block(3)] }))).toThrow(/device 0 has more than 2 distinct allocation sites/);

    const pools = new SnapshotAnalysis({ maxPrivatePools: 2 });
    const inPool = (id: number) => dict({ device: 0, total_size: 512, segment_pool_id: [id, 0], blocks: [] });
    for (const id of [1, 2, 1, 2]) pools.segment(inPool(id));
    expect(() => pools.segment(inPool(3))).toThrow(/more than 2 private pools/);
  });
});

/** A dict as the reader makes one. */
function dict(fields: Record<string, unknown>): Record<string, unknown> {
  const reader = new PickleReader();
  reader.decode(Buffer.from([0x80, 0x04, 0x7d, 0x2e]), 0);
  return Object.assign(reader.result as Record<string, unknown>, fields);
}
