/**
 * `gpu-layers probe` (the default verb): one sample of every GPU and its processes, joined with
 * every layer source given: the companion files, vLLM servers and logs, the model config, /proc
 * and the calibration cache.
 */
import { openMonitor } from '../../monitor/monitor.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { LAYER_SOURCE_FLAGS, layerOptionsFromFlags } from '../layer-source-flags.js';
import { LIBRARY_FLAGS, libraryOptionsFromFlags } from '../library-flags.js';
import { parseFlags } from '../parse-flags.js';
import { checkIdsExist, FILTER_FLAGS, filterSample, sampleFilterFromFlags } from '../sample-filter.js';
import { renderProbeCsv } from '../render/probe-csv.js';
import { MAIN_HELP, UsageError } from '../usage.js';
import { writeSample } from './sample-output.js';

const FORMATS = ['table', 'json', 'csv'];

export async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    json: { type: 'boolean' },
    format: { type: 'string' },
    ...LIBRARY_FLAGS,
    'no-cuda': { type: 'boolean' },
    ...LAYER_SOURCE_FLAGS,
    'no-host': { type: 'boolean' },
    ...FILTER_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(MAIN_HELP);
    return EXIT_OK;
  }
  const format = flags.format ?? (flags.json === true ? 'json' : 'table');
  if (!FORMATS.includes(format)) throw new UsageError(`--format expects one of ${FORMATS.join(', ')}, not "${format}"`);
  if (flags.json === true && format !== 'json') throw new UsageError(`--json and --format ${format} say different things: give one`);
  const filter = sampleFilterFromFlags(flags);
  const monitor = await openMonitor({
    probe: { ...libraryOptionsFromFlags(flags), ...(flags['no-cuda'] === true ? { cudaLibrary: false as const } : {}), env: io.env },
    layers: { ...layerOptionsFromFlags(flags, io.env), host: flags['no-host'] !== true },
  });
  try {
    const sample = await monitor.sample();
    checkIdsExist(sample, filter);
    const shown = filterSample(sample, filter);
    if (format === 'csv') io.stdout.write(renderProbeCsv(shown));
    else writeSample(shown, format === 'json', io);
  } finally {
    await monitor.close();
  }
  return EXIT_OK;
}
