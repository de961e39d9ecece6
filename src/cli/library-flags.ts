/**
 * The flags that say which NVML and CUDA libraries to load and how long to wait for them, shared
 * by `probe`, `doctor` and `calibrate` (whose options use the same names).
 */
import { parseDuration } from './parse-flags.js';

export const LIBRARY_FLAGS = {
  timeout: { type: 'string' },
  'nvml-lib': { type: 'string' },
  'cuda-lib': { type: 'string' },
} as const;

interface LibraryValues {
  timeout?: string;
  'nvml-lib'?: string;
  'cuda-lib'?: string;
}

export function libraryOptionsFromFlags(flags: LibraryValues): { nvmlLibrary?: string; cudaLibrary?: string; timeoutMs?: number } {
  return {
    ...(flags['nvml-lib'] !== undefined ? { nvmlLibrary: flags['nvml-lib'] } : {}),
    ...(flags['cuda-lib'] !== undefined ? { cudaLibrary: flags['cuda-lib'] } : {}),
    ...(flags.timeout !== undefined ? { timeoutMs: parseDuration(flags.timeout, '--timeout') } : {}),
  };
}
