/**
 * The first line of a recording (`gpu-layers record`): what wrote it, on which host, how often,
 * and which sample schema the lines after it follow. Every other line is one layered sample, the
 * document `probe --json` prints.
 */
import * as z from 'zod/mini';

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
