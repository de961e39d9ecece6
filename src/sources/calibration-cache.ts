/**
 * The cache of measured context costs: one entry per device UUID, driver version and
 * CUDA_MODULE_LOADING mode (the three things a bare context's size depends on), in the user's
 * cache folder ($GPU_LAYERS_CACHE_DIR, else $XDG_CACHE_HOME/gpu-layers, else
 * ~/.cache/gpu-layers). Written by `gpu-layers calibrate`, read by every probe.
 */
import { lstatSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { fileErrorReason } from '../file-error-reason.js';
import { normalizeUuid } from '../sample/uuid.js';
import { validate } from '../validation.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { FileRefusedError, readTextFile } from './read-text-file.js';

const entrySchema = z.object({
  uuid: z.string(),
  name: z.nullable(z.string()),
  driverVersion: z.string(),
  moduleLoading: z.string(),
  contextBytes: z.int().check(z.nonnegative()),
  measuredAt: z.string(),
});

const cacheSchema = z.object({ version: z.literal(1), entries: z.array(entrySchema) });

export type CalibrationEntry = z.infer<typeof entrySchema>;

/** PyTorch sets CUDA_MODULE_LOADING=LAZY when it is unset, so that is what workloads run with. */
export function moduleLoadingOf(env: Record<string, string | undefined>): string {
  const value = env.CUDA_MODULE_LOADING;
  return value !== undefined && value !== '' ? value : 'LAZY';
}

export function calibrationCacheFile(env: Record<string, string | undefined>): string {
  const dir = env.GPU_LAYERS_CACHE_DIR || path.join(env.XDG_CACHE_HOME || path.join(homedir(), '.cache'), 'gpu-layers');
  return path.join(dir, 'context-calibration.json');
}

export type CacheRead = { ok: true; entries: CalibrationEntry[] } | { ok: false; missing: boolean; message: string };

/** A cache holds a few entries per GPU: anything near this size is not one. */
const MAX_CACHE_BYTES = 4 * 1024 * 1024;

function unreadableCache(file: string, error: unknown): CacheRead {
  const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
  return { ok: false, missing, message: missing ? `no ${file}: run \`gpu-layers calibrate\`` : `${file}: ${error instanceof FileRefusedError ? error.message : fileErrorReason(error)}` };
}

/**
 * Read on every sample, so without blocking: a FIFO or a huge file planted at the cache's path
 * is refused, not waited on or read whole.
 */
export async function readCalibrationCache(file: string): Promise<CacheRead> {
  let text: string;
  try {
    text = await readTextFile(file, MAX_CACHE_BYTES, { regularOnly: true });
  } catch (error) {
    return unreadableCache(file, error);
  }
  return parseCalibrationCache(text, file);
}

function parseCalibrationCache(text: string, file: string): CacheRead {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, missing: false, message: `${file} is not JSON: ${(error as Error).message}` };
  }
  const parsed = validate(cacheSchema, json);
  if (!parsed.ok) return { ok: false, missing: false, message: `${file} is not a calibration cache: ${parsed.message}` };
  return { ok: true, entries: parsed.data.entries };
}

const key = (e: Pick<CalibrationEntry, 'uuid' | 'driverVersion' | 'moduleLoading'>): string =>
  `${normalizeUuid(e.uuid) ?? e.uuid}|${e.driverVersion}|${e.moduleLoading}`;

/**
 * Merges new measurements over the cached ones (same key replaced) and writes atomically. Run by
 * `calibrate`, not per sample: the old cache is read synchronously. A folder or file that cannot
 * be written is OUTPUT_UNWRITABLE.
 */
export function writeCalibrationCache(file: string, measured: CalibrationEntry[]): CalibrationEntry[] {
  let before: CacheRead;
  try {
    before = lstatSync(file).isFile() ? parseCalibrationCache(readFileSync(file, 'utf8'), file) : { ok: false, missing: false, message: 'not a file' };
  } catch (error) {
    before = unreadableCache(file, error);
  }
  const merged = new Map((before.ok ? before.entries : []).map((e) => [key(e), e]));
  for (const entry of measured) merged.set(key(entry), entry);
  const entries = [...merged.values()];
  try {
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileAtomic(file, JSON.stringify({ version: 1, entries }, null, 2) + '\n');
  } catch (error) {
    throw new GpuLayersError('OUTPUT_UNWRITABLE', `cannot write the calibration cache ${file}: ${fileErrorReason(error)}`, { cause: error });
  }
  return entries;
}

export function lookupContextBytes(
  entries: readonly CalibrationEntry[],
  uuid: string | null,
  driverVersion: string | null,
  moduleLoading: string,
): number | null {
  if (uuid === null || driverVersion === null) return null;
  const want = key({ uuid, driverVersion, moduleLoading });
  return entries.find((e) => key(e) === want)?.contextBytes ?? null;
}
