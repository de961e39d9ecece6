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
import { MAIN_HELP } from '../usage.js';
import { writeSample } from './sample-output.js';

export async function probeCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    json: { type: 'boolean' },
    ...LIBRARY_FLAGS,
    'no-cuda': { type: 'boolean' },
    ...LAYER_SOURCE_FLAGS,
    'no-host': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(MAIN_HELP);
    return EXIT_OK;
  }
  const monitor = await openMonitor({
    probe: { ...libraryOptionsFromFlags(flags), ...(flags['no-cuda'] === true ? { cudaLibrary: false as const } : {}), env: io.env },
    layers: { ...layerOptionsFromFlags(flags, io.env), host: flags['no-host'] !== true },
  });
  try {
    writeSample(await monitor.sample(), flags.json === true, io);
  } finally {
    await monitor.close();
  }
  return EXIT_OK;
}
