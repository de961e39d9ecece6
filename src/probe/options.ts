/**
 * openProbe's options, validated with zod, with the environment variables the docs fix as
 * fallbacks: GPU_LAYERS_NVML_LIB, GPU_LAYERS_CUDA_LIB and GPU_LAYERS_ADDON.
 */
import * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { validate } from '../validation.js';

export const DEFAULT_NVML_LIBRARY = 'libnvidia-ml.so.1';
export const DEFAULT_CUDA_LIBRARY = 'libcuda.so.1';
export const DEFAULT_TIMEOUT_MS = 5000;

const nonEmpty = z.string().check(z.minLength(1));

export const probeOptionsSchema = z.strictObject({
  /** NVML library to dlopen: a path, or a name the dynamic linker resolves. */
  nvmlLibrary: z.optional(nonEmpty),
  /** CUDA driver library to dlopen, or false to skip CUDA (no cudaOrdinal then). */
  cudaLibrary: z.optional(z.union([nonEmpty, z.literal(false)])),
  /** Deadline for opening and for each sample; a call that takes longer rejects with NVML_TIMEOUT. */
  timeoutMs: z.optional(z.int().check(z.positive(), z.maximum(3_600_000))),
  /** Read each process's command line from /proc (async; off by default: a file read per process). */
  processCommands: z.optional(z.boolean()),
  /** The compiled addon to load (default: the package's own, a source build in build/Release,
   * else the prebuild for this platform in prebuilds/). */
  addonPath: z.optional(nonEmpty),
  /** Where to read GPU_LAYERS_* variables (default process.env, which is not a plain object, so
   * this is checked as "an object" and read key by key). */
  env: z.optional(
    z.custom<Record<string, string | undefined>>((value) => typeof value === 'object' && value !== null, 'expected an object of strings'),
  ),
});

export type ProbeOptions = z.input<typeof probeOptionsSchema>;

export interface ResolvedProbeOptions {
  nvmlLibrary: string;
  cudaLibrary: string | null;
  timeoutMs: number;
  processCommands: boolean;
  addonPath: string | undefined;
}

export function resolveProbeOptions(options: unknown): ResolvedProbeOptions {
  const parsed = validate(probeOptionsSchema, options ?? {});
  if (!parsed.ok) throw new GpuLayersError('INVALID_OPTIONS', `invalid probe options: ${parsed.message}`);
  const o = parsed.data;
  const env = o.env ?? process.env;
  const fromEnv = (name: string): string | undefined => {
    const value = env[name];
    return typeof value === 'string' && value !== '' ? value : undefined;
  };
  return {
    nvmlLibrary: o.nvmlLibrary ?? fromEnv('GPU_LAYERS_NVML_LIB') ?? DEFAULT_NVML_LIBRARY,
    cudaLibrary: o.cudaLibrary === false ? null : (o.cudaLibrary ?? fromEnv('GPU_LAYERS_CUDA_LIB') ?? DEFAULT_CUDA_LIBRARY),
    timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    processCommands: o.processCommands ?? false,
    addonPath: o.addonPath ?? fromEnv('GPU_LAYERS_ADDON'),
  };
}
