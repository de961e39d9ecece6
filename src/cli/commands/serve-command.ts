/**
 * `gpu-layers serve`: the Prometheus exporter. Loopback unless --host says otherwise (metrics
 * name processes and commands: exposing them is a decision). Runs until SIGINT or SIGTERM, then
 * closes the server and NVML cleanly. A failed collection is a warning line; serving goes on.
 */
import { isGpuLayersError } from '../../errors.js';
import { createExporter, DEFAULT_EXPORTER_INTERVAL_MS, DEFAULT_EXPORTER_PORT } from '../../exporter/create-exporter.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { LAYER_SOURCE_FLAGS, layerOptionsFromFlags } from '../layer-source-flags.js';
import { LIBRARY_FLAGS, libraryOptionsFromFlags } from '../library-flags.js';
import { parseCount, parseDuration, parseFlags, parseInterval } from '../parse-flags.js';
import { MIN_EVERY_MS, type CanaryScheduleOptions } from '../../exporter/canary-schedule.js';
import { stopSignal } from '../stop-signal.js';
import { SERVE_HELP, UsageError } from '../usage.js';
import { FLIGHT_FLAGS, flightRecorderFromFlags, reportFlights } from '../flight-flags.js';
import { checkIdsExist, FILTER_FLAGS, filterSample, sampleFilterFromFlags } from '../sample-filter.js';
import type { LayeredSample } from '../../layers/schema.js';

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new UsageError(`--port expects a port number from 0 (any free port) to 65535, not "${value}"`);
  return port;
}

const DEFAULT_CANARY_EVERY_MS = 6 * 3_600_000;

/** The canary's schedule from --canary-* (none without --canary-openai; the model is then required). */
function canaryFromFlags(flags: { 'canary-openai'?: string; 'canary-model'?: string; 'canary-every'?: string; 'canary-budget'?: string }, io: CliIo): CanaryScheduleOptions | null {
  const url = flags['canary-openai'];
  if (url === undefined) {
    for (const name of ['canary-model', 'canary-every', 'canary-budget'] as const) if (flags[name] !== undefined) throw new UsageError(`--${name} needs --canary-openai URL`);
    return null;
  }
  const model = flags['canary-model'];
  if (model === undefined) throw new UsageError('--canary-openai needs --canary-model NAME (the served model, as /v1/models lists it)');
  const everyMs = flags['canary-every'] === undefined ? DEFAULT_CANARY_EVERY_MS : parseDuration(flags['canary-every'], '--canary-every', { minMs: MIN_EVERY_MS, maxMs: 30 * 86_400_000 });
  const budget = flags['canary-budget'] === undefined ? undefined : parseCount(flags['canary-budget'], '--canary-budget');
  return {
    canary: { url, model, env: io.env, ...(budget !== undefined ? { requestBudget: budget } : {}) },
    everyMs,
    onResult: (result) => io.stderr.write(`gpu-layers serve: canary ${result.verdict}: ${result.counts.same} same, ${result.counts.noise} noise, ${result.counts.mismatch} mismatch (${result.load.requestsSent} requests)\n`),
    onError: (error) => io.stderr.write(`gpu-layers serve: warning: canary run failed: ${isGpuLayersError(error) ? `${error.message} [${error.code}]` : String(error)}\n`),
  };
}

export async function serveCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    host: { type: 'string' },
    port: { type: 'string' },
    interval: { type: 'string' },
    'diagnosis-window': { type: 'string' },
    ...LIBRARY_FLAGS,
    ...LAYER_SOURCE_FLAGS,
    ...FLIGHT_FLAGS,
    'canary-openai': { type: 'string' },
    'canary-model': { type: 'string' },
    'canary-every': { type: 'string' },
    'canary-budget': { type: 'string' },
    'no-host': { type: 'boolean' },
    'command-label': { type: 'boolean' },
    ...FILTER_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(SERVE_HELP);
    return EXIT_OK;
  }
  const host = flags.host ?? '127.0.0.1';
  const port = flags.port === undefined ? DEFAULT_EXPORTER_PORT : parsePort(flags.port);
  const intervalMs = flags.interval === undefined ? DEFAULT_EXPORTER_INTERVAL_MS : parseInterval(flags.interval, '--interval');
  const windowMs = flags['diagnosis-window'] === undefined ? undefined : parseDuration(flags['diagnosis-window'], '--diagnosis-window', { minMs: 60_000, maxMs: 7 * 86_400_000 });

  const canary = canaryFromFlags(flags, io);
  const filter = sampleFilterFromFlags(flags);
  // The first sample taken, to check that each -i names a GPU of this host once it is known.
  let first: LayeredSample | null = null;
  let lastWarning = '';
  const exporter = await createExporter({
    intervalMs,
    ...(windowMs !== undefined ? { diagnosisWindowMs: windowMs } : {}),
    probe: { ...libraryOptionsFromFlags(flags), env: io.env },
    layers: {
      ...layerOptionsFromFlags(flags, io.env),
      host: flags['no-host'] !== true,
    },
    onCollectError: (error) => {
      const line = isGpuLayersError(error) ? `${error.message} [${error.code}]` : String(error);
      // One line per kind of failure, not one per interval while NVML stays wedged (the message
      // itself changes: it counts the seconds the stuck call has waited).
      const kind = isGpuLayersError(error) ? error.code : line;
      if (kind !== lastWarning) io.stderr.write(`gpu-layers serve: warning: collection failed: ${line}\n`);
      lastWarning = kind;
    },
    commandLabel: flags['command-label'] === true,
    flights: flightRecorderFromFlags(flags, io, intervalMs),
    onFlights: (result) => reportFlights(result, io, 'serve'),
    ...(canary !== null ? { canary } : {}),
    ...(filter !== null
      ? {
          select: (sample: LayeredSample) => {
            first ??= sample;
            return filterSample(sample, filter);
          },
        }
      : {}),
  });
  try {
    if (first !== null) checkIdsExist(first, filter);
  } catch (error) {
    await exporter.close();
    throw error;
  }
  // Handled before the address is printed: a supervisor that sends SIGTERM as soon as it reads the
  // line gets a clean close, not Node's default exit.
  const stop = stopSignal(null);
  try {
    const address = await exporter.listen(port, host);
    io.stderr.write(`gpu-layers serve: http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}/metrics, sampling every ${intervalMs / 1000} s\n`);
  } catch (error) {
    stop.dispose();
    await exporter.close();
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EADDRINUSE' ? 'the port is in use' : code === 'EACCES' ? 'permission denied' : code === 'EADDRNOTAVAIL' ? 'no such address on this host' : (error as Error).message;
    throw new UsageError(`cannot listen on ${host}:${port}: ${why}`);
  }
  if (!stop.signal.aborted) await new Promise((resolve) => stop.signal.addEventListener('abort', resolve, { once: true }));
  stop.dispose();
  await exporter.close();
  return EXIT_OK;
}
