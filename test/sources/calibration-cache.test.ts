/** The calibration cache: where it lives, merging measurements, refusing a broken file. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

import {
  calibrationCacheFile,
  lookupContextBytes,
  moduleLoadingOf,
  readCalibrationCache,
  writeCalibrationCache,
  type CalibrationEntry,
} from '../../src/sources/calibration-cache.js';

const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-cache-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const entry = (uuid: string, bytes: number, moduleLoading = 'LAZY'): CalibrationEntry => ({
  uuid,
  name: 'H100',
  driverVersion: '550.54.15',
  moduleLoading,
  contextBytes: bytes,
  measuredAt: '2026-11-26T12:00:00.000Z',
});

describe('calibration cache', () => {
  it('lives in GPU_LAYERS_CACHE_DIR, else XDG_CACHE_HOME, else ~/.cache', () => {
    expect(calibrationCacheFile({ GPU_LAYERS_CACHE_DIR: '/c' })).toBe('/c/context-calibration.json');
    expect(calibrationCacheFile({ XDG_CACHE_HOME: '/x' })).toBe('/x/gpu-layers/context-calibration.json');
    expect(calibrationCacheFile({})).toMatch(/\/\.cache\/gpu-layers\/context-calibration\.json$/);
  });

  it('defaults the module loading mode to LAZY, as PyTorch does', () => {
    expect(moduleLoadingOf({})).toBe('LAZY');
    expect(moduleLoadingOf({ CUDA_MODULE_LOADING: 'EAGER' })).toBe('EAGER');
  });

  it('merges new measurements over old ones of the same device, driver and mode', async () => {
    const file = path.join(dir, 'merge', 'cache.json');
    writeCalibrationCache(file, [entry('GPU-aaaaaaaa-0000-0000-0000-000000000000', 100), entry('GPU-bbbbbbbb-0000-0000-0000-000000000000', 200)]);
    writeCalibrationCache(file, [entry('gpu-AAAAAAAA-0000-0000-0000-000000000000', 150), entry('GPU-aaaaaaaa-0000-0000-0000-000000000000', 900, 'EAGER')]);
    const read = await readCalibrationCache(file);
    const entries = read.ok ? read.entries : [];
    expect(entries).toHaveLength(3);
    expect(lookupContextBytes(entries, 'GPU-aaaaaaaa-0000-0000-0000-000000000000', '550.54.15', 'LAZY')).toBe(150);
    expect(lookupContextBytes(entries, 'GPU-aaaaaaaa-0000-0000-0000-000000000000', '550.54.15', 'EAGER')).toBe(900);
    expect(lookupContextBytes(entries, 'GPU-aaaaaaaa-0000-0000-0000-000000000000', null, 'LAZY')).toBeNull();
  });

  it('a missing or broken cache is reported, never used', async () => {
    expect(await readCalibrationCache(path.join(dir, 'none.json'))).toMatchObject({ ok: false, missing: true, message: expect.stringContaining('gpu-layers calibrate') });
    writeFileSync(path.join(dir, 'broken.json'), '{"version":1,"entries":[{"uuid":');
    expect(await readCalibrationCache(path.join(dir, 'broken.json'))).toMatchObject({ ok: false, missing: false, message: expect.stringContaining('not JSON') });
    writeFileSync(path.join(dir, 'wrong.json'), '{"version":1,"entries":[{"uuid":"x"}]}');
    expect(await readCalibrationCache(path.join(dir, 'wrong.json'))).toMatchObject({ ok: false, message: expect.stringContaining('not a calibration cache') });
  });

  it('a FIFO or a folder at the cache path is reported at once, not waited on', async () => {
    const fifo = path.join(dir, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    expect(await readCalibrationCache(fifo)).toMatchObject({ ok: false, missing: false, message: expect.stringContaining('not a regular file') });
    expect(await readCalibrationCache(dir)).toMatchObject({ ok: false, missing: false });
  });

  it('a cache that cannot be written is OUTPUT_UNWRITABLE, not an internal error', () => {
    const blocked = path.join(dir, 'a-file');
    writeFileSync(blocked, '');
    expect(() => writeCalibrationCache(path.join(blocked, 'cache.json'), [entry('GPU-aaaaaaaa-0000-0000-0000-000000000000', 100)])).toThrow(
      expect.objectContaining({ code: 'OUTPUT_UNWRITABLE', message: expect.stringContaining('cannot write the calibration cache') }),
    );
  });
});
