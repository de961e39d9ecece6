/**
 * The first line of a recording (`gpu-layers record`): what wrote it, on which host, how often,
 * and which sample schema the lines after it follow. Every other line is one layered sample, the
 * document `probe --json` prints.
 */
import * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { SAMPLE_SCHEMA_VERSION } from '../sample/schema-version.js';
import { validate } from '../validation.js';

export const RECORDING_FORMAT = 'gpu-layers-recording';

export const recordingHeaderSchema = z.object({
  format: z.literal(RECORDING_FORMAT),
  /** The layered sample's schemaVersion for every line after this one. */
  schemaVersion: z.int().check(z.positive()),
  gpuLayersVersion: z.string(),
  host: z.string(),
  /** When this file was started, ISO 8601. */
  startedAt: z.string(),
  intervalMs: z.int().check(z.positive()),
  driverVersion: z.nullable(z.string()),
  nvmlVersion: z.nullable(z.string()),
  cudaDriverVersion: z.nullable(z.int()),
});

export type RecordingHeader = z.infer<typeof recordingHeaderSchema>;

/** The header for a recording whose first sample is `first`. */
export function recordingHeaderFor(
  first: { schemaVersion: number; driver: { version: string | null; nvmlVersion: string | null; cudaDriverVersion: number | null } },
  options: { host: string; intervalMs: number; startedAt: string; gpuLayersVersion: string },
): RecordingHeader {
  return {
    format: RECORDING_FORMAT,
    schemaVersion: first.schemaVersion,
    gpuLayersVersion: options.gpuLayersVersion,
    host: options.host,
    startedAt: options.startedAt,
    intervalMs: options.intervalMs,
    driverVersion: first.driver.version,
    nvmlVersion: first.driver.nvmlVersion,
    cudaDriverVersion: first.driver.cudaDriverVersion,
  };
}

export function notARecording(name: string, why: string): GpuLayersError {
  return new GpuLayersError('RECORDING_INVALID', `${name} is not a gpu-layers recording: ${why}`);
}

export function parseRecordingHeader(line: string, name: string): RecordingHeader {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw notARecording(name, 'its first line is not a recording header');
  }
  const format = (value as { format?: unknown } | null)?.format;
  if (format !== RECORDING_FORMAT) throw notARecording(name, 'its first line is not a recording header');
  const version = (value as { schemaVersion?: unknown }).schemaVersion;
  if (typeof version === 'number' && version > SAMPLE_SCHEMA_VERSION) {
    throw new GpuLayersError(
      'RECORDING_TOO_NEW',
      `${name} was recorded with sample schema ${version}; this gpu-layers reads schema ${SAMPLE_SCHEMA_VERSION}: upgrade gpu-layers to read it`,
    );
  }
  const parsed = validate(recordingHeaderSchema, value);
  if (!parsed.ok) throw notARecording(name, `its header is invalid: ${parsed.message}`);
  return parsed.data;
}
