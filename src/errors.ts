/**
 * The one error class gpu-layers throws or rejects with. `code` is a stable string callers can
 * switch on; `category` says what kind of failure it is (the CLI's exit code follows from it);
 * `nvmlReturn` keeps NVML's number where there is one; `hints` say what to do.
 */
import { describeNvmlReturn } from './return-codes.js';

/**
 * What kind of failure an error is: the caller asked for something invalid (`usage`), the GPUs
 * cannot be read through this driver, library or addon (`gpu`), or a file given as input (or
 * asked to be written) is unreadable or not what it should be (`input`).
 */
export type ErrorCategory = 'usage' | 'gpu' | 'input';

type FixedCode =
  | 'INVALID_OPTIONS'
  | 'CUDA_UNAVAILABLE'
  | 'NATIVE_ADDON_UNAVAILABLE'
  | 'NATIVE_OUTPUT_INVALID'
  | 'NATIVE_FAILURE'
  | 'NVML_LIBRARY_NOT_FOUND'
  | 'NVML_LIBRARY_INVALID'
  | 'NVML_TIMEOUT'
  | 'PROBE_CLOSED'
  | 'SCENARIO_INVALID'
  // A recording (`gpu-layers record`) that cannot be read, is not one, or is from a newer version.
  | 'RECORDING_UNREADABLE'
  | 'RECORDING_INVALID'
  | 'RECORDING_TOO_NEW'
  // A PyTorch memory snapshot that cannot be read, or is not one (refused opcodes included).
  | 'SNAPSHOT_UNREADABLE'
  | 'SNAPSHOT_INVALID'
  // A file gpu-layers was asked to write (a recording, a report) that it cannot write.
  | 'OUTPUT_UNWRITABLE'
  // `gpu-layers canary`: an OpenAI-compatible endpoint that cannot be used, and why.
  | 'CANARY_CA_FILE_UNREADABLE'
  | 'CANARY_UNREACHABLE'
  | 'CANARY_TIMEOUT'
  | 'CANARY_TLS_FAILED'
  | 'CANARY_REDIRECTED'
  | 'CANARY_UNAUTHORIZED'
  | 'CANARY_NOT_FOUND'
  | 'CANARY_REQUEST_REJECTED'
  | 'CANARY_SERVER_ERROR'
  | 'CANARY_NOT_OPENAI'
  | 'CANARY_RESPONSE_INVALID'
  | 'CANARY_RESPONSE_TRUNCATED'
  | 'CANARY_RESPONSE_TOO_LARGE';

export type GpuLayersErrorCode =
  | FixedCode
  // nvmlInit failures: 'NVML_' + the return code's name without 'NVML_ERROR_',
  // e.g. NVML_DRIVER_NOT_LOADED, NVML_NO_PERMISSION, NVML_LIB_RM_VERSION_MISMATCH.
  | `NVML_${string}`;

/** Every code's category (the NVML_ ones are `gpu`): adding a code without one does not compile. */
const CATEGORIES: Record<FixedCode, ErrorCategory> = {
  INVALID_OPTIONS: 'usage',
  PROBE_CLOSED: 'usage',
  CUDA_UNAVAILABLE: 'gpu',
  NATIVE_ADDON_UNAVAILABLE: 'gpu',
  NATIVE_OUTPUT_INVALID: 'gpu',
  NATIVE_FAILURE: 'gpu',
  NVML_LIBRARY_NOT_FOUND: 'gpu',
  NVML_LIBRARY_INVALID: 'gpu',
  NVML_TIMEOUT: 'gpu',
  SCENARIO_INVALID: 'input',
  RECORDING_UNREADABLE: 'input',
  RECORDING_INVALID: 'input',
  RECORDING_TOO_NEW: 'input',
  SNAPSHOT_UNREADABLE: 'input',
  SNAPSHOT_INVALID: 'input',
  OUTPUT_UNWRITABLE: 'input',
  CANARY_CA_FILE_UNREADABLE: 'input',
  CANARY_UNREACHABLE: 'input',
  CANARY_TIMEOUT: 'input',
  CANARY_TLS_FAILED: 'input',
  CANARY_REDIRECTED: 'input',
  CANARY_UNAUTHORIZED: 'input',
  CANARY_NOT_FOUND: 'input',
  CANARY_REQUEST_REJECTED: 'input',
  CANARY_SERVER_ERROR: 'input',
  CANARY_NOT_OPENAI: 'input',
  CANARY_RESPONSE_INVALID: 'input',
  CANARY_RESPONSE_TRUNCATED: 'input',
  CANARY_RESPONSE_TOO_LARGE: 'input',
};

/** What the CUDA driver said while the probe opened (part of the story when NVML fails). */
export interface CudaStatus {
  available: boolean;
  driverVersion: number | null;
  deviceCount: number | null;
  error: { code: string; nvmlReturn: number | null; message: string } | null;
}

export interface GpuLayersErrorDetails {
  nvmlReturn?: number;
  hints?: string[];
  library?: string;
  cuda?: CudaStatus;
  cause?: unknown;
}

export class GpuLayersError extends Error {
  readonly code: GpuLayersErrorCode;
  readonly nvmlReturn: number | null;
  readonly hints: string[];
  /** The library path that was tried, for load and init failures. */
  readonly library: string | null;
  readonly cuda: CudaStatus | null;

  constructor(code: GpuLayersErrorCode, message: string, details: GpuLayersErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'GpuLayersError';
    this.code = code;
    this.nvmlReturn = details.nvmlReturn ?? null;
    this.hints = details.hints ?? [];
    this.library = details.library ?? null;
    this.cuda = details.cuda ?? null;
  }

  get category(): ErrorCategory {
    return (CATEGORIES as Record<string, ErrorCategory | undefined>)[this.code] ?? 'gpu';
  }
}

/** The stable code for an NVML return code, as thrown when nvmlInit fails. */
export function nvmlErrorCode(nvmlReturn: number): GpuLayersErrorCode {
  const name = describeNvmlReturn(nvmlReturn).name;
  return `NVML_${name.replace(/^NVML_ERROR_/, '')}`;
}

export function isGpuLayersError(error: unknown): error is GpuLayersError {
  return error instanceof GpuLayersError;
}
