/**
 * Where the mock libnvidia-ml.so.1 and libcuda.so.1 are (built or prebuilt), and the environment
 * that points gpu-layers (or any NVML client, through LD_LIBRARY_PATH) at them.
 */
import path from 'node:path';

import { binaryFolders, locateMockLibraries } from '../binding/binary-location.js';
import { GpuLayersError } from '../errors.js';

export interface MockLibraries {
  /** The folder holding both, for LD_LIBRARY_PATH (pynvml and other NVML clients). */
  directory: string;
  nvml: string;
  cuda: string;
}

/** The source build's (build/Release/mock) when both are there, else the prebuilt ones the package ships. */
export function mockLibraries(): MockLibraries {
  const directory = locateMockLibraries();
  if (directory === null) {
    throw new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', `the mock libraries are neither built nor prebuilt (looked in ${binaryFolders().map((f) => f.mock).join(' and ')})`, {
      hints: ['build them with `npm rebuild gpu-layers --build-from-source` (needs python3, make and a C compiler)'],
    });
  }
  return { directory, nvml: path.join(directory, 'libnvidia-ml.so.1'), cuda: path.join(directory, 'libcuda.so.1') };
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
