/**
 * Turns the addon's process rows (five numbers a row, three NVML lists) into processes merged per
 * pid and MIG instance: a process NVML lists as both compute and graphics is one process with
 * both types, not two. The rules for a list NVML could not give are here too.
 */
import { checkedInteger, notAvailable, notReported, nvmlFieldError } from './field-errors.js';
import type { FieldErrors, GpuProcess, ProcessType } from './schema.js';

export const PROCESS_TYPES: readonly ProcessType[] = ['compute', 'graphics', 'mps'];
const ROW_WIDTH = 5;

export interface ProcessListStatus {
  rc: number;
  rowBytes: number;
}

/** The resolved symbol and candidate names of each list's function, for "missing symbol" text. */
export interface ProcessListSymbols {
  resolved: readonly (string | null)[];
  candidates: readonly (readonly string[])[];
}

/** The 16-byte rows of the plain (v1) process calls have no MIG instance ids. */
const NO_INSTANCE_IDS = notReported('this process list has 16-byte rows (the v1 call), which carry no MIG instance ids');

/**
 * Merged processes, or null when the compute list (the one CUDA workloads are in) failed: a
 * partial list must not pass for a complete one. A failed graphics or MPS list is recorded in
 * `errors` as processes.graphics / processes.mps and the rest is kept. `migInstances`: the rows
 * belong to MIG instances, so instance ids the driver did not give are null with a reason (with
 * MIG off they are null by definition).
 */
export function mergeProcessRows(
  rows: Float64Array | undefined,
  lists: readonly ProcessListStatus[] | undefined,
  symbols: ProcessListSymbols,
  errors: FieldErrors,
  migInstances = false,
): GpuProcess[] | null {
  if (rows === undefined || lists === undefined) return null;
  let computeFailed = false;
  lists.forEach((list, kind) => {
    if (list.rc === 0) return;
    errors[`processes.${PROCESS_TYPES[kind]}`] = nvmlFieldError(list.rc, symbols.resolved[kind], symbols.candidates[kind]);
    if (kind === 0) computeFailed = true;
  });
  if (computeFailed) {
    errors.processes = errors['processes.compute']!;
    return null;
  }
  // The hot loop of a sample (hundreds of rows): no per-row allocation beyond the process itself,
  // numeric keys for the common case of MIG off.
  const merged = new Map<number | string, GpuProcess>();
  for (let offset = 0; offset + ROW_WIDTH <= rows.length; offset += ROW_WIDTH) {
    const kind = rows[offset]!;
    if (lists[kind]?.rc !== 0) continue;
    const pid = rows[offset + 1]!;
    const used = rows[offset + 2]!;
    const gi = rows[offset + 3]!;
    const ci = rows[offset + 4]!;
    const gpuInstanceId = Number.isNaN(gi) ? null : gi;
    const computeInstanceId = Number.isNaN(ci) ? null : ci;
    const key = gpuInstanceId === null && computeInstanceId === null ? pid : `${pid}/${gi}/${ci}`;
    const usedBytes = Number.isSafeInteger(used) && used >= 0 ? used : null;
    const type = PROCESS_TYPES[kind]!;
    const existing = merged.get(key);
    if (existing === undefined) {
      // The addon only passes rows whose pids are plausible (1..PID_MAX_LIMIT).
      const process: GpuProcess = { pid, usedBytes, types: [type], gpuInstanceId, computeInstanceId };
      let rowErrors: FieldErrors | undefined;
      if (usedBytes === null) {
        rowErrors = {};
        checkedInteger(used, rowErrors, 'usedBytes');
      }
      if (migInstances && (gpuInstanceId === null || computeInstanceId === null)) {
        rowErrors ??= {};
        const reason = (lists[kind]?.rowBytes ?? 0) < 24 ? NO_INSTANCE_IDS : notAvailable;
        if (gpuInstanceId === null) rowErrors.gpuInstanceId = reason;
        if (computeInstanceId === null) rowErrors.computeInstanceId = reason;
      }
      if (rowErrors !== undefined) process.errors = rowErrors;
      merged.set(key, process);
      continue;
    }
    if (!existing.types.includes(type)) existing.types.push(type);
    // NVML reports a process's whole footprint in each list it appears in: take the figure once.
    if (usedBytes !== null && (existing.usedBytes === null || usedBytes > existing.usedBytes)) {
      existing.usedBytes = usedBytes;
      if (existing.errors !== undefined) {
        delete existing.errors.usedBytes;
        if (Object.keys(existing.errors).length === 0) delete existing.errors;
      }
    }
  }
  return [...merged.values()];
}
