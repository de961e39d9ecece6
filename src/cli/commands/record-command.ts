/**
 * `gpu-layers record --out FILE`: layered samples appended to FILE as JSON lines (header first)
 * every --interval, until --duration, --count or Ctrl-C. Crash-safe (see write-recording.ts);
 * with --max-size the file rotates. A failed sample is a warning on stderr; the recording goes on.
 */
import { hostname } from 'node:os';

import { isGpuLayersError } from '../../errors.js';
import type { LayeredSample } from '../../layers/schema.js';
import { openMonitor } from '../../monitor/monitor.js';
import { recordingHeaderFor } from '../../recording/recording-header.js';
import { checkRecordingTarget, RecordingWriter } from '../../recording/write-recording.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { LAYER_SOURCE_FLAGS, layerOptionsFromFlags } from '../layer-source-flags.js';
import { LIBRARY_FLAGS, libraryOptionsFromFlags } from '../library-flags.js';
import { parseCount, parseDuration, parseFlags, parseInterval, parseSize } from '../parse-flags.js';
import { checkIdsExist, FILTER_FLAGS, filterSample, sampleFilterFromFlags } from '../sample-filter.js';
import { stopSignal } from '../stop-signal.js';
import { RECORD_HELP, UsageError } from '../usage.js';
import { packageVersion } from '../version.js';
import { FLIGHT_FLAGS, flightRecorderFromFlags, reportFlights } from '../flight-flags.js';

const DEFAULT_INTERVAL_MS = 5000;

export async function recordCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    out: { type: 'string', short: 'o' },
    interval: { type: 'string' },
    duration: { type: 'string' },
    count: { type: 'string' },
    'max-size': { type: 'string' },
    keep: { type: 'string' },
    ...LIBRARY_FLAGS,
    ...LAYER_SOURCE_FLAGS,
    ...FLIGHT_FLAGS,
    'no-host': { type: 'boolean' },
    ...FILTER_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(RECORD_HELP);
    return EXIT_OK;
  }
  if (flags.out === undefined) throw new UsageError('record needs --out FILE');
  const intervalMs = flags.interval === undefined ? DEFAULT_INTERVAL_MS : parseInterval(flags.interval, '--interval');
  const durationMs = flags.duration === undefined ? null : parseDuration(flags.duration, '--duration', { minMs: 1, maxMs: 366 * 86_400_000 });
  const count = flags.count === undefined ? null : parseCount(flags.count, '--count');
  const maxBytes = flags['max-size'] === undefined ? undefined : parseSize(flags['max-size'], '--max-size');
  const keep = flags.keep === undefined ? undefined : parseCount(flags.keep, '--keep');
  const filter = sampleFilterFromFlags(flags);
  const layerOptions = { ...layerOptionsFromFlags(flags, io.env), host: flags['no-host'] !== true };

  checkRecordingTarget(flags.out);
  const monitor = await openMonitor({ probe: { ...libraryOptionsFromFlags(flags), env: io.env }, layers: layerOptions });
  const stop = stopSignal(durationMs);
  const flights = flightRecorderFromFlags(flags, io, intervalMs);
  let writer: RecordingWriter | null = null;
  let samples = 0;
  let failures = 0;
  try {
    const watch = monitor.watch({
      intervalMs,
      signal: stop.signal,
      onError: (error) => {
        failures++;
        const what = isGpuLayersError(error) ? `${error.message} [${error.code}]` : String(error);
        io.stderr.write(`gpu-layers record: warning: sample skipped: ${what}\n`);
      },
    });
    // Each part's header (the first, and each one a rotation starts) is made from the sample
    // about to open it: its own startedAt, which orders the parts when they are read back.
    let current: LayeredSample | null = null;
    for await (const whole of watch) {
      if (samples === 0 && writer === null) checkIdsExist(whole, filter);
      const sample = filterSample(whole, filter);
      current = sample;
      writer ??= new RecordingWriter(
        flags.out,
        () => recordingHeaderFor(current!, { host: hostname(), intervalMs, startedAt: current!.takenAt, gpuLayersVersion: packageVersion() }),
        { ...(maxBytes !== undefined ? { maxBytes } : {}), ...(keep !== undefined ? { keep } : {}) },
      );
      writer.append(sample);
      if (flights !== null) reportFlights(flights.observe(sample), io, 'record');
      samples++;
      if (count !== null && samples >= count) stop.stop('count');
    }
  } finally {
    stop.dispose();
    writer?.close();
    await monitor.close();
  }
  const why = stop.reason() === 'interrupted' ? ' (interrupted)' : '';
  io.stderr.write(`gpu-layers record: ${samples} sample(s) written to ${flags.out}${failures > 0 ? `, ${failures} skipped` : ''}${why}\n`);
  return EXIT_OK;
}
