/** `gpu-layers doctor`: what was found on this host and, for each missing piece, the fix. */
import { doctorChecks, type Check } from '../../doctor/doctor-checks.js';
import { gatherFacts } from '../../doctor/gather-facts.js';
import { useColor, type CliIo } from '../cli-io.js';
import { EXIT_FINDING, EXIT_NVML_UNAVAILABLE, EXIT_OK } from '../exit-codes.js';
import { LAYER_SOURCE_FLAGS, layerOptionsFromFlags } from '../layer-source-flags.js';
import { LIBRARY_FLAGS, libraryOptionsFromFlags } from '../library-flags.js';
import { parseFlags } from '../parse-flags.js';
import { makeStyle } from '../render/style.js';
import { DOCTOR_HELP } from '../usage.js';

function render(checks: Check[], io: CliIo): string {
  const style = makeStyle(useColor(io));
  const lines = ['gpu-layers doctor'];
  for (const c of checks) {
    const mark = c.ok === true ? style.used('✓') : c.ok === false ? style.warn('✗') : style.dim('-');
    lines.push(`${mark} ${style.bold(c.title)}: ${c.detail}`);
    if (c.ok === false && c.fix !== null) lines.push(`    fix: ${c.fix}`);
  }
  const failing = checks.filter((c) => c.ok === false).length;
  lines.push(failing === 0 ? 'Everything gpu-layers needs is in place.' : `${failing} thing(s) to fix; the layers they feed are null until then.`);
  return lines.join('\n') + '\n';
}

/** The checks without which no GPU can be read: the native addon, and NVML itself. */
const DRIVER_LAYER = new Set(['addon', 'nvml']);

/**
 * doctor's exit code, for scripts and provisioning: 0 everything in place, 1 something to fix
 * (a layer source, the calibration, a missing NVML function, ...), 3 the driver layer unusable
 * (the addon does not load, or NVML cannot be read): as `probe` would exit.
 */
export function doctorExitCode(checks: readonly Check[]): number {
  if (checks.some((c) => c.ok === false && DRIVER_LAYER.has(c.id))) return EXIT_NVML_UNAVAILABLE;
  return checks.some((c) => c.ok === false) ? EXIT_FINDING : EXIT_OK;
}

export async function doctorCommand(args: string[], io: CliIo): Promise<number> {
  const flags = parseFlags(args, {
    json: { type: 'boolean' },
    ...LIBRARY_FLAGS,
    ...LAYER_SOURCE_FLAGS,
    help: { type: 'boolean', short: 'h' },
  });
  if (flags.help === true) {
    io.stdout.write(DOCTOR_HELP);
    return EXIT_OK;
  }
  const facts = await gatherFacts(
    { env: io.env, ...libraryOptionsFromFlags(flags) },
    layerOptionsFromFlags(flags, io.env),
  );
  const checks = doctorChecks(facts);
  io.stdout.write(flags.json === true ? JSON.stringify({ ok: checks.every((c) => c.ok !== false), checks }, null, 2) + '\n' : render(checks, io));
  return doctorExitCode(checks);
}
