/**
 * The reasons attached to null fields: NVML return codes turned into FieldError objects, and
 * the checks that keep implausible numbers out of a sample (unknown is null, never a guess).
 */
import { describeNvmlReturn } from '../return-codes.js';
import type { FieldError, FieldErrors } from './schema.js';

/** The addon's own statuses, outside NVML's range (native/readings.h). */
export const RC_NOT_CALLED = -1;
export const RC_ROWS_IMPLAUSIBLE = -2;
export const RC_STRING_UNTERMINATED = -3;
export const RC_COUNT_IMPLAUSIBLE = -4;
const RC_FUNCTION_NOT_FOUND = 13;

/**
 * The reason for a failed NVML call. `symbol` is the export the call resolved to; null with
 * FUNCTION_NOT_FOUND means the library does not export it at all (an older driver).
 */
export function nvmlFieldError(rc: number, symbol?: string | null, candidates?: readonly string[]): FieldError {
  if (rc === RC_NOT_CALLED) return { code: 'NOT_QUERIED', nvmlReturn: null, message: 'not queried' };
  if (rc === RC_ROWS_IMPLAUSIBLE) {
    return {
      code: 'ROWS_IMPLAUSIBLE',
      nvmlReturn: null,
      message: 'the driver returned process rows that decode to impossible values with every known row size',
    };
  }
  if (rc === RC_COUNT_IMPLAUSIBLE) {
    return {
      code: 'VALUE_OUT_OF_RANGE',
      nvmlReturn: null,
      message: 'the driver reports more processes than any GPU runs (over 65536) at the first call; the list was not read',
    };
  }
  if (rc === RC_STRING_UNTERMINATED) {
    return {
      code: 'STRING_UNTERMINATED',
      nvmlReturn: null,
      message: 'the driver filled the whole buffer without a terminating NUL: the text is cut off at an unknown point',
    };
  }
  const described = describeNvmlReturn(rc);
  if (rc === RC_FUNCTION_NOT_FOUND && symbol === null) {
    const names = candidates !== undefined && candidates.length > 0 ? candidates.join(', ') : 'the function';
    return {
      code: described.name,
      nvmlReturn: rc,
      message: `this NVML exports none of ${names} (an older driver)`,
    };
  }
  return { code: described.name, nvmlReturn: rc, message: described.message };
}

/** A reason that does not come from NVML: a layer source that is missing, unreadable or invalid. */
export function sourceError(code: string, message: string): FieldError {
  return { code, nvmlReturn: null, message };
}

/** What the driver reported as success but did not fill in (an empty struct). */
export function notReported(message: string): FieldError {
  return { code: 'NOT_REPORTED', nvmlReturn: null, message };
}

export const notAvailable: FieldError = {
  code: 'VALUE_NOT_AVAILABLE',
  nvmlReturn: null,
  message: 'NVML reports this value as not available',
};

function outOfRange(value: number): FieldError {
  return { code: 'VALUE_OUT_OF_RANGE', nvmlReturn: null, message: `implausible value from the driver: ${value}` };
}

/**
 * A byte count as the addon passed it (null or NaN = NVML's "not available"), checked to be a
 * safe non-negative integer. Anything else is null with its reason under `key` in `errors`.
 */
export function checkedBytes(value: number | null | undefined, errors: FieldErrors, key: string): number | null {
  if (value === null || value === undefined || Number.isNaN(value)) {
    errors[key] = notAvailable;
    return null;
  }
  if (!Number.isSafeInteger(value) || value < 0) {
    errors[key] = outOfRange(value);
    return null;
  }
  return value;
}

/** A non-negative integer id or count within `max` (inclusive); same rules as checkedBytes. */
export function checkedInteger(
  value: number | null | undefined,
  errors: FieldErrors,
  key: string,
  max: number = Number.MAX_SAFE_INTEGER,
): number | null {
  const checked = checkedBytes(value, errors, key);
  if (checked !== null && checked > max) {
    errors[key] = outOfRange(checked);
    return null;
  }
  return checked;
}
