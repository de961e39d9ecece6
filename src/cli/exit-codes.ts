/** The CLI's exit codes (docs/cli.md): scripts and alerting depend on them. */
import type { ErrorCategory } from '../errors.js';

export const EXIT_OK = 0;
/** A diagnosis finding at or above --fail-on. */
export const EXIT_FINDING = 1;
export const EXIT_USAGE = 2;
/** NVML or the driver cannot be used (no library, no driver, no permission, wedged). */
export const EXIT_NVML_UNAVAILABLE = 3;
/** An input file is unreadable or invalid. */
export const EXIT_BAD_INPUT = 4;
/** An error gpu-layers did not foresee (a bug): reported with a line asking to report it. */
export const EXIT_INTERNAL = 5;

/**
 * The exit code of each kind of failure. An error gpu-layers did not foresee (a bug) has its own:
 * it says nothing of the GPUs, so it must not read as "NVML unavailable" to a script or an alert.
 */
export const EXIT_CODE_OF: Record<ErrorCategory | 'internal', number> = {
  usage: EXIT_USAGE,
  gpu: EXIT_NVML_UNAVAILABLE,
  input: EXIT_BAD_INPUT,
  internal: EXIT_INTERNAL,
};
