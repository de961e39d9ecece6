/**
 * The OOM flight recorder's flags, shared by `serve`, `watch` and `record`: where flights go
 * (`--flight-dir`, default `flights` in gpu-layers' cache folder) or none at all (`--no-flights`),
 * and how a verb says that it wrote one: a line on stderr, the event and where to look.
 */
import { hostname } from 'node:os';

import { defaultFlightDirectory, FlightRecorder, type FlightResult } from '../flight-recorder/flight-recorder.js';
import { formatBytes } from '../format-bytes.js';
import type { CliIo } from './cli-io.js';
import { packageVersion } from './version.js';

export const FLIGHT_FLAGS = {
  'flight-dir': { type: 'string' },
  'no-flights': { type: 'boolean' },
} as const;

interface FlightValues {
  'flight-dir'?: string;
  'no-flights'?: boolean;
}

export function flightRecorderFromFlags(flags: FlightValues, io: CliIo, intervalMs: number): FlightRecorder | null {
  if (flags['no-flights'] === true) return null;
  return new FlightRecorder({ dir: flags['flight-dir'] ?? defaultFlightDirectory(io.env), host: hostname(), intervalMs, gpuLayersVersion: packageVersion() });
}

/** One line per flight written, one per failure; nothing when the sample showed no out-of-memory. */
export function reportFlights(result: FlightResult, io: CliIo, verb: string): void {
  for (const flight of result.flights) {
    const grew = flight.grewBefore.length === 0 ? '' : ` Before it: ${flight.grewBefore.map((g) => `${g.what} ${formatBytes(g.first)} -> ${formatBytes(g.last)}`).join(', ')}.`;
    io.stderr.write(`gpu-layers ${verb}: OUT OF MEMORY: ${flight.event.detail}${grew} Flight recording: ${flight.recording} (diagnosis beside it: ${flight.diagnosis})\n`);
  }
  for (const failure of result.failures) io.stderr.write(`gpu-layers ${verb}: warning: ${failure}\n`);
}
