/** The CLI's exit codes (DESIGN.md): scripts and alerting depend on them. */
export const EXIT_OK = 0;
/** A diagnosis finding at or above --fail-on. */
export const EXIT_FINDING = 1;
export const EXIT_USAGE = 2;
/** NVML or the driver cannot be used (no library, no driver, no permission, wedged). */
export const EXIT_NVML_UNAVAILABLE = 3;
/** An input file is unreadable or invalid. */
export const EXIT_BAD_INPUT = 4;
