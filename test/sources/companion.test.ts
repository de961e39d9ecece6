/** The companion files as gpu-layers reads them: validity, pid reuse, staleness, device matching. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import { allocatorLayerSchema } from '../../src/layers/schema.js';
import { allocatorLayerOf } from '../../src/layers/allocator-layer.js';
import {
  checkCompanion,
  companionOomSnapshotPath,
  MAX_COMPANION_REASON_CHARS,
  readCompanion,
  type CompanionFile,
  type CompanionHost,
  type CompanionOom,
} from '../../src/sources/companion.js';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-companion-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function document(overrides: Partial<CompanionFile> = {}): CompanionFile {
  return {
    format: 'gpu-layers-companion',
    version: 1,
    pid: 4242,
    startTimeTicks: 987654,
    writtenAt: NOW / 1000 - 1,
    intervalSeconds: 2,
    torchVersion: '2.5.1',
    devices: [
      {
        index: 0,
        uuid: '5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a17',
        name: 'NVIDIA H100 80GB HBM3',
        stats: {
          'reserved_bytes.all.current': 6000,
          'allocated_bytes.all.current': 4000,
          'active_bytes.all.current': 4100,
          'inactive_split_bytes.all.current': 300,
          'requested_bytes.all.current': 3900,
          num_alloc_retries: 2,
          num_ooms: 0,
        },
        privatePoolBytes: 700,
        largestFreeBlockBytes: 2500,
      },
    ],
    errors: [],
    ...overrides,
  };
}

const check = (text: string, startTime: number | null = 987654) => checkCompanion('/s/4242.json', text, 4242, startTime, NOW);

describe('checkCompanion', () => {
  it('accepts a fresh file of the same process', () => {
    expect(check(JSON.stringify(document()))).toMatchObject({ ok: true, ageSeconds: 1 });
  });

  it.each([
    ['{"format":"gpu-layers-companion","pi', 'COMPANION_INVALID', /not JSON/],
    ['[]', 'COMPANION_INVALID', /not a companion file/],
    [JSON.stringify({ ...document(), version: 2 }), 'COMPANION_INVALID', /version/],
    [JSON.stringify(document({ pid: 77 })), 'COMPANION_INVALID', /pid 77/],
    [JSON.stringify(document({ startTimeTicks: 5 })), 'COMPANION_OTHER_PROCESS', /earlier process/],
    [JSON.stringify(document({ writtenAt: NOW / 1000 - 7 })), 'COMPANION_STALE', /7\.0 s ago/],
  ])('refuses %s with %s', (text, code, message) => {
    expect(check(text)).toMatchObject({ ok: false, error: { code, message: expect.stringMatching(message) } });
  });

  it('cannot check pid reuse when /proc does not show the process, and says nothing false', () => {
    expect(check(JSON.stringify(document({ startTimeTicks: 5 })), null)).toMatchObject({ ok: true });
  });
});

describe('the host part', () => {
  const host = (): CompanionHost => ({
    malloc: { source: 'mallinfo2', arenaBytes: 106_926_080, inUseBytes: 317_005_728, freeBytes: 250_064, mmappedBytes: 210_329_600, mmappedChunks: 4, releasableBytes: 151_248, arenaCount: 5 },
    mallocUnknownBecause: null,
    python: { allocatedBlocks: 39_498, tracedBytes: null },
  });
  const accepted = (value: unknown) => {
    const result = check(JSON.stringify({ ...document(), host: value }));
    return result.ok ? result.document.host : result;
  };

  it('is optional (files of older companions) and may be null', () => {
    const older = check(JSON.stringify(document()));
    expect(older).toMatchObject({ ok: true });
    expect((older as { document: CompanionFile }).document.host).toBeUndefined();
    expect(accepted(null)).toBeNull();
  });

  it('keeps the figures as written, and malloc null with its reason', () => {
    expect(accepted(host())).toEqual(host());
    const unknown = { malloc: null, mallocUnknownBecause: 'no glibc malloc statistics in this C library (musl?)', python: { allocatedBlocks: 1, tracedBytes: 4096 } };
    expect(accepted(unknown)).toEqual(unknown);
    expect(accepted({ ...host(), malloc: { ...host().malloc!, arenaCount: null } })).toMatchObject({ malloc: { arenaCount: null } });
  });

  const bad: Array<[string, (h: CompanionHost & Record<string, unknown>) => unknown]> = [
    ['a negative byte count', (h) => ({ ...h, malloc: { ...h.malloc, inUseBytes: -1 } })],
    ['a fractional byte count', (h) => ({ ...h, malloc: { ...h.malloc, freeBytes: 1.5 } })],
    ['bytes past 2^53', (h) => ({ ...h, malloc: { ...h.malloc, mmappedBytes: 2 ** 60 } })],
    ['a count as a string', (h) => ({ ...h, malloc: { ...h.malloc, arenaCount: '5' } })],
    ['another source than mallinfo2', (h) => ({ ...h, malloc: { ...h.malloc, source: 'mallinfo' } })],
    ['a missing figure', (h) => ({ ...h, malloc: { ...h.malloc, releasableBytes: undefined } })],
    ['a negative block count', (h) => ({ ...h, python: { allocatedBlocks: -3, tracedBytes: null } })],
    ['fractional traced bytes', (h) => ({ ...h, python: { allocatedBlocks: 3, tracedBytes: 0.5 } })],
    ['a reason of 301 characters', (h) => ({ ...h, malloc: null, mallocUnknownBecause: 'x'.repeat(MAX_COMPANION_REASON_CHARS + 1) })],
    ['a megabyte reason', (h) => ({ ...h, malloc: null, mallocUnknownBecause: 'x'.repeat(2 ** 20) })],
    ['a reason that is not a string', (h) => ({ ...h, mallocUnknownBecause: 42 })],
    ['a host that is not an object', () => 'glibc'],
  ];
  it.each(bad)('refuses %s with COMPANION_INVALID, quoting no key of the file', (_, mutate) => {
    const result = check(JSON.stringify({ ...document(), host: mutate(host() as CompanionHost & Record<string, unknown>) }));
    expect(result).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/at host/) } });
    expect((result as { error: { message: string } }).error.message).not.toContain('…');
  });

  it('a reason of exactly the cap is taken', () => {
    const reason = 'y'.repeat(MAX_COMPANION_REASON_CHARS);
    expect(accepted({ ...host(), malloc: null, mallocUnknownBecause: reason })).toMatchObject({ mallocUnknownBecause: reason });
  });

  it('a key of the file under host is not quoted', () => {
    const result = check(JSON.stringify({ ...document(), host: { ...host(), malloc: { ...host().malloc, 'attacker-text': 1, arenaBytes: -1 } } }));
    expect(result).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/at host\.malloc\.arenaBytes/) } });
    expect((result as { error: { message: string } }).error.message).not.toContain('attacker');
  });
});

describe('the oom part (PyTorch out-of-memory observer)', () => {
  const GiB = 2 ** 30;
  const oom = (): CompanionOom => ({
    count: 2,
    at: NOW / 1000 - 1.5,
    device: 0,
    requestedBytes: 3 * GiB,
    deviceTotalBytes: 80 * GiB,
    deviceFreeBytes: 300 * 2 ** 20,
    snapshot: '4242.oom-1.pickle',
    snapshotError: 'not taken: within 1 s of the last OOM written (an OOM storm: at most one write a second)',
  });
  const accepted = (value: unknown) => {
    const result = check(JSON.stringify({ ...document(), oom: value }));
    return result.ok ? result.document.oom : result;
  };

  it('is optional (files of older companions) and null before the first OOM', () => {
    const older = check(JSON.stringify(document()));
    expect((older as { document: CompanionFile }).document.oom).toBeUndefined();
    expect(accepted(null)).toBeNull();
  });

  it('keeps the figures as written; the snapshot resolves in the folder the file was read from', () => {
    expect(accepted(oom())).toEqual(oom());
    expect(accepted({ ...oom(), snapshot: null, snapshotError: null })).toMatchObject({ snapshot: null, snapshotError: null });
    expect(companionOomSnapshotPath('/dev/shm/gpu-layers/4242.json', oom())).toBe('/dev/shm/gpu-layers/4242.oom-1.pickle');
    expect(companionOomSnapshotPath('/s/4242.json', { ...oom(), snapshot: null })).toBeNull();
  });

  it('takes an int64 request past 2^53 (a size computed wrong is what an OOM reports)', () => {
    expect(accepted({ ...oom(), requestedBytes: 2 ** 62 })).toMatchObject({ requestedBytes: 2 ** 62 });
  });

  it('a reason of exactly the cap is taken', () => {
    const reason = 'z'.repeat(MAX_COMPANION_REASON_CHARS);
    expect(accepted({ ...oom(), snapshotError: reason })).toMatchObject({ snapshotError: reason });
  });

  const bad: Array<[string, (o: CompanionOom) => unknown]> = [
    ['a count of 0', (o) => ({ ...o, count: 0 })],
    ['a fractional count', (o) => ({ ...o, count: 1.5 })],
    ['a negative device', (o) => ({ ...o, device: -1 })],
    ['a device past 127', (o) => ({ ...o, device: 128 })],
    ['negative free bytes', (o) => ({ ...o, deviceFreeBytes: -1 })],
    ['fractional bytes', (o) => ({ ...o, requestedBytes: 0.5 })],
    ['bytes past 2^63', (o) => ({ ...o, deviceTotalBytes: 2 ** 64 })],
    ['bytes as a string', (o) => ({ ...o, requestedBytes: '3221225472' })],
    ['a time past what a Date holds', (o) => ({ ...o, at: 1e13 })],
    ['a missing figure', (o) => ({ ...o, deviceFreeBytes: undefined })],
    ['a snapshot path with a folder', (o) => ({ ...o, snapshot: '/dev/shm/gpu-layers/4242.oom-1.pickle' })],
    ['a snapshot path climbing out', (o) => ({ ...o, snapshot: '../4242.oom-1.pickle' })],
    ['a snapshot name of another form', (o) => ({ ...o, snapshot: '4242.json' })],
    ['a hidden snapshot name', (o) => ({ ...o, snapshot: '.4242.oom-1.pickle' })],
    ['a snapshot name with a NUL', (o) => ({ ...o, snapshot: '4242.oom-1.pickle\u0000' })],
    ['a snapshot name with a newline', (o) => ({ ...o, snapshot: '4242.oom-1.pickle\n' })],
    ['a reason of 301 characters', (o) => ({ ...o, snapshotError: 'x'.repeat(MAX_COMPANION_REASON_CHARS + 1) })],
    ['an oom that is not an object', () => [1, 2, 3]],
  ];
  it.each(bad)('refuses %s with COMPANION_INVALID, quoting no key of the file', (_, mutate) => {
    const result = check(JSON.stringify({ ...document(), oom: mutate(oom()) }));
    expect(result).toMatchObject({ ok: false, error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/at oom/) } });
    expect((result as { error: { message: string } }).error.message).not.toContain('…');
  });

  it('refuses a snapshot named after another pid', () => {
    expect(check(JSON.stringify({ ...document(), oom: { ...oom(), snapshot: '4243.oom-1.pickle' } }))).toMatchObject({
      ok: false,
      error: { code: 'COMPANION_INVALID', message: expect.stringMatching(/OOM snapshot of another process/) },
    });
  });
});

describe('readCompanion', () => {
  it('a missing file says how to enable the companion', async () => {
    expect(await readCompanion(dir, 31337, { startTimeTicks: null, writerUids: [process.geteuid!()] }, NOW)).toMatchObject({ ok: false, error: { code: 'COMPANION_MISSING', message: expect.stringMatching(/gpu-layers companion/) } });
  });

  it('reads <pid>.json from the folder', async () => {
    writeFileSync(path.join(dir, '4242.json'), JSON.stringify(document()));
    expect(await readCompanion(dir, 4242, { startTimeTicks: 987654, writerUids: [process.geteuid!()] }, NOW)).toMatchObject({ ok: true, file: path.join(dir, '4242.json') });
  });
});

describe('allocatorLayerOf', () => {
  const ok = check(JSON.stringify(document())) as Extract<ReturnType<typeof check>, { ok: true }>;

  it('maps torch figures of the matching device, whatever the UUID spelling', () => {
    const layer = allocatorLayerOf(ok, 'GPU-5D8A1E0C-7F3B-4A62-9C1E-2B8F0D4E6A17');
    expect(() => allocatorLayerSchema.parse(layer)).not.toThrow();
    expect(layer).toEqual({
      reservedBytes: 6000,
      allocatedBytes: 4000,
      activeBytes: 4100,
      inactiveSplitBytes: 300,
      requestedBytes: 3900,
      numAllocRetries: 2,
      numOoms: 0,
      privatePoolBytes: 700,
      largestFreeBlockBytes: 2500,
      privatePoolAllocatedBytes: null,
      lastOom: null,
      source: { file: '/s/4242.json', writtenAt: new Date(NOW - 1000).toISOString(), ageSeconds: 1, torchVersion: '2.5.1' },
    });
  });

  it('no device with that UUID is COMPANION_NO_DEVICE', () => {
    expect(allocatorLayerOf(ok, 'GPU-00000000-0000-0000-0000-000000000000')).toMatchObject({ code: 'COMPANION_NO_DEVICE' });
  });

  it('without UUIDs (old torch), the one device the allocator uses is taken', () => {
    const noUuid = document();
    noUuid.devices = [
      { ...noUuid.devices[0]!, uuid: null, index: 0, stats: { 'reserved_bytes.all.current': 0 } },
      { ...noUuid.devices[0]!, uuid: null, index: 1 },
    ];
    const result = check(JSON.stringify(noUuid)) as typeof ok;
    expect(allocatorLayerOf(result, 'GPU-anything')).toMatchObject({ reservedBytes: 6000 });
  });

  it('a figure torch does not report is null, not zero', () => {
    const partial = document();
    partial.devices[0]!.stats = { 'reserved_bytes.all.current': 10, 'allocated_bytes.all.current': -1 };
    const layer = allocatorLayerOf(check(JSON.stringify(partial)) as typeof ok, partial.devices[0]!.uuid);
    expect(layer).toMatchObject({ reservedBytes: 10, allocatedBytes: null, requestedBytes: null });
  });
});

describe("the allocator layer's last out-of-memory", () => {
  it("is the companion's record for that device, with the snapshot's path beside the file, and none for another device", async () => {
    const { allocatorLayerOf } = await import('../../src/layers/allocator-layer.js');
    const oom = { count: 2, at: 1_796_643_747.5, device: 0, requestedBytes: 3 * 2 ** 30, deviceTotalBytes: 80 * 2 ** 30, deviceFreeBytes: 300 * 2 ** 20, snapshot: '4242.oom-1.pickle', snapshotError: null };
    const document = {
      format: 'gpu-layers-companion' as const,
      version: 1 as const,
      pid: 4242,
      startTimeTicks: 1,
      writtenAt: 1_796_643_748,
      intervalSeconds: 2,
      torchVersion: '2.8.0',
      devices: [0, 1].map((index) => ({ index, uuid: `5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a1${index}`, name: 'H100', stats: { 'reserved_bytes.all.current': 1024 }, privatePoolBytes: null })),
      errors: [],
      oom,
    };
    const result = { ok: true as const, file: '/dev/shm/gpu-layers/4242.json', document, ageSeconds: 0.5 };
    const on0 = allocatorLayerOf(result, 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a10');
    const on1 = allocatorLayerOf(result, 'GPU-5d8a1e0c-7f3b-4a62-9c1e-2b8f0d4e6a11');
    if ('code' in on0 || 'code' in on1) throw new Error('no layer');
    expect(on0.lastOom).toEqual({ ...oom, at: new Date(oom.at * 1000).toISOString(), snapshot: '/dev/shm/gpu-layers/4242.oom-1.pickle' });
    expect(on1.lastOom).toBeNull();
  });
});
