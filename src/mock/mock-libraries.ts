/**
 * Where the built mock libnvidia-ml.so.1 and libcuda.so.1 are, and the environment that points
 * gpu-layers (or any NVML client, through LD_LIBRARY_PATH) at them.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { GpuLayersError } from '../errors.js';
import { packageRoot } from '../package-root.js';

export interface MockLibraries {
  /** The folder holding both, for LD_LIBRARY_PATH (pynvml and other NVML clients). */
  directory: string;
  nvml: string;
  cuda: string;
}

export function mockLibraries(): MockLibraries {
  const directory = path.join(packageRoot(), 'build', 'Release', 'mock');
  const libraries = { directory, nvml: path.join(directory, 'libnvidia-ml.so.1'), cuda: path.join(directory, 'libcuda.so.1') };
  if (!existsSync(libraries.nvml) || !existsSync(libraries.cuda)) {
    throw new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', `the mock libraries are not built in ${directory}`, {
      hints: ['build them with `npm rebuild gpu-layers` (needs python3, make and a C compiler)'],
    });
  }
  return libraries;
}

/** Environment variables that make gpu-layers read the mock with `scenarioFile`. */
export function mockEnvironment(scenarioFile: string): Record<string, string> {
  const libraries = mockLibraries();
  return {
    GPU_LAYERS_NVML_LIB: libraries.nvml,
    GPU_LAYERS_CUDA_LIB: libraries.cuda,
    GPU_LAYERS_MOCK_SCENARIO: scenarioFile,
  };
}
