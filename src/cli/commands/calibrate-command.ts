/**
 * `gpu-layers calibrate`: measures a bare CUDA context on each device in a child process and
 * caches it for the probe's context layer. `--child` is that child (internal).
 */
import { calibrateContexts, measureOwnContexts } from '../../calibration/calibrate.js';
import type { CliIo } from '../cli-io.js';
import { EXIT_OK } from '../exit-codes.js';
import { LIBRARY_FLAGS, libraryOptionsFromFlags } from '../library-flags.js';
import { parseFlags } from '../parse-flags.js';
import { formatBytes } from '../../format-bytes.js';
import { CALIBRATE_HELP } from '../usage.js';

export async function calibrateCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    json: { type: 'boolean' },
    ...LIBRARY_FLAGS,
    child: { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(CALIBRATE_HELP);
    return EXIT_OK;
  }
  if (flags.child === true) {
    io.stdout.write(JSON.stringify(await measureOwnContexts(io.env)) + '\n');
    return EXIT_OK;
  }
  const report = await calibrateContexts({
    env: io.env,
    ...libraryOptionsFromFlags(flags),
  });
  if (flags.json === true) {
    io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return EXIT_OK;
  }
  io.stdout.write(`A bare CUDA context, driver ${report.driverVersion ?? 'n/a'}, CUDA_MODULE_LOADING=${report.moduleLoading}:\n`);
  for (const device of report.devices) {
    const figure = device.contextBytes !== null ? formatBytes(device.contextBytes) : `n/a (${device.error})`;
    io.stdout.write(`  cuda:${device.ordinal}  ${device.name ?? ''}  ${device.uuid ?? ''}  ${figure}\n`);
  }
  io.stdout.write(report.cacheFile !== null ? `cached in ${report.cacheFile}\n` : 'nothing measured, nothing cached\n');
  return EXIT_OK;
}
