/**
 * `gpu-layers watch`: a live view. On a terminal the screen is redrawn in place with, per
 * process, the stacked layers and a sparkline of each gap; piped, one line per sample (or one
 * JSON document per line with --json). With --diagnose the rules run over the last --window of
 * samples and the findings show under the view (piped: a line when a finding appears).
 */
import { diagnose } from '../../diagnosis/diagnose.js';
import type { Finding } from '../../diagnosis/finding-schema.js';
import { isGpuLayersError } from '../../errors.js';
import { openMonitor } from '../../monitor/monitor.js';
import { RollingWindow } from '../../monitor/rolling-window.js';
import { useColor, type CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { LAYER_SOURCE_FLAGS, layerOptionsFromFlags } from '../layer-source-flags.js';
import { LIBRARY_FLAGS, libraryOptionsFromFlags } from '../library-flags.js';
import { parseCount, parseDuration, parseFlags, parseInterval } from '../parse-flags.js';
import { subjectText } from '../render/findings-text.js';
import { makeStyle } from '../render/style.js';
import { renderWatchFrame, renderWatchLine } from '../render/watch-view.js';
import { listenForQuit } from '../quit-keys.js';
import { checkIdsExist, FILTER_FLAGS, filterSample, sampleFilterFromFlags } from '../sample-filter.js';
import { stopSignal } from '../stop-signal.js';
import { WATCH_HELP } from '../usage.js';
import { FLIGHT_FLAGS, flightRecorderFromFlags, reportFlights } from '../flight-flags.js';

const DEFAULT_INTERVAL_MS = 2000;
const DEFAULT_WINDOW_MS = 15 * 60_000;
/** Past this many samples in the window, its older half is thinned (a long window at a short interval). */
const MAX_HISTORY = 5000;

// Cursor home, clear to the end of each line and below the frame, hide and show the cursor.
const HOME = '\u001b[H';
const CLEAR_LINE = '\u001b[K';
const CLEAR_BELOW = '\u001b[J';
const HIDE_CURSOR = '\u001b[?25l';
const SHOW_CURSOR = '\u001b[?25h';

const findingKey = (f: Finding): string => `${f.id}/${f.subject.deviceIndex}/${f.subject.pid ?? ''}`;

export async function watchCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    interval: { type: 'string' },
    count: { type: 'string' },
    diagnose: { type: 'boolean' },
    window: { type: 'string' },
    json: { type: 'boolean' },
    ...LIBRARY_FLAGS,
    ...LAYER_SOURCE_FLAGS,
    ...FLIGHT_FLAGS,
    'no-host': { type: 'boolean' },
    ...FILTER_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(WATCH_HELP);
    return EXIT_OK;
  }
  const intervalMs = flags.interval === undefined ? DEFAULT_INTERVAL_MS : parseInterval(flags.interval, '--interval');
  const count = flags.count === undefined ? null : parseCount(flags.count, '--count');
  const windowMs = flags.window === undefined ? DEFAULT_WINDOW_MS : parseDuration(flags.window, '--window', { minMs: 60_000, maxMs: 7 * 86_400_000 });
  const filter = sampleFilterFromFlags(flags);
  const live = io.stdout.isTTY === true && flags.json !== true;
  const style = makeStyle(useColor(io));

  const monitor = await openMonitor({
    probe: { ...libraryOptionsFromFlags(flags), env: io.env },
    layers: { ...layerOptionsFromFlags(flags, io.env), host: flags['no-host'] !== true },
  });
  const stop = stopSignal(null);
  // On a terminal, q (or Ctrl-C, which raw mode delivers as a key) ends the watch cleanly.
  const restoreKeys = io.stdout.isTTY === true ? listenForQuit(io.stdin, (reason) => stop.stop(reason)) : () => {};
  const window = new RollingWindow({ windowMs, maxSamples: MAX_HISTORY });
  const flights = flightRecorderFromFlags(flags, io, intervalMs);
  const reported = new Set<string>();
  let status: string | undefined;
  let flightNote: string | undefined;
  let samples = 0;
  if (live) io.stdout.write(`${HIDE_CURSOR}\u001b[2J`);
  try {
    const watch = monitor.watch({
      intervalMs,
      signal: stop.signal,
      onError: (error) => {
        status = `sample failed: ${isGpuLayersError(error) ? `${error.message} [${error.code}]` : String(error)}`;
        if (!live) io.stderr.write(`gpu-layers watch: warning: ${status}\n`);
      },
    });
    for await (const whole of watch) {
      if (samples === 0) checkIdsExist(whole, filter);
      const sample = filterSample(whole, filter);
      status = undefined;
      samples++;
      window.push(sample);
      if (flights !== null) {
        const result = flights.observe(sample);
        // On a terminal the frame's status line says it (stderr would tear the frame).
        if (!live) reportFlights(result, io, 'watch');
        else if (result.failures.length > 0) status = result.failures.at(-1);
        // Kept on the screen from then on: the line that says where to look must not flash by.
        if (result.flights.length > 0) flightNote = `out of memory: ${result.flights.at(-1)!.event.detail} Flight recording: ${result.flights.at(-1)!.recording}`;
      }
      const history = window.samples;
      const findings = flags.diagnose === true ? diagnose(history) : undefined;
      if (flags.json === true) {
        io.stdout.write(`${JSON.stringify(sample)}\n`);
      } else if (live) {
        const frame = renderWatchFrame(history, { style, width: Math.max(40, io.stdout.columns || 100), intervalMs, ...(findings !== undefined ? { findings } : {}), ...((status ?? flightNote) !== undefined ? { status: status ?? flightNote } : {}) });
        io.stdout.write(HOME + frame.replace(/\n/g, `${CLEAR_LINE}\n`) + CLEAR_BELOW);
      } else {
        io.stdout.write(`${renderWatchLine(sample)}\n`);
      }
      if (!live && findings !== undefined) {
        for (const finding of findings) {
          if (reported.has(findingKey(finding))) continue;
          reported.add(findingKey(finding));
          const line = `finding ${finding.severity} ${finding.id} ${subjectText(finding)}: ${finding.title}`;
          if (flags.json === true) io.stderr.write(`gpu-layers watch: ${line}\n`);
          else io.stdout.write(`${line}\n`);
        }
      }
      if (count !== null && samples >= count) stop.stop('count');
    }
  } finally {
    restoreKeys();
    stop.dispose();
    if (live) io.stdout.write(SHOW_CURSOR);
    await monitor.close();
  }
  return EXIT_OK;
}
