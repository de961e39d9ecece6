/** resolveProbeOptions: options first, then the GPU_LAYERS_* environment, then the defaults. */
import { describe, expect, it } from 'vitest';

import { resolveProbeOptions } from '../../src/probe/options.js';

describe('resolveProbeOptions', () => {
  it('defaults to the driver libraries by name and a 5 s deadline', () => {
    expect(resolveProbeOptions({ env: {} })).toEqual({
      nvmlLibrary: 'libnvidia-ml.so.1',
      cudaLibrary: 'libcuda.so.1',
      timeoutMs: 5000,
      processCommands: false,
      addonPath: undefined,
    });
  });

  it('reads GPU_LAYERS_NVML_LIB, GPU_LAYERS_CUDA_LIB and GPU_LAYERS_ADDON; options win', () => {
    const env = { GPU_LAYERS_NVML_LIB: '/a/nvml.so', GPU_LAYERS_CUDA_LIB: '/a/cuda.so', GPU_LAYERS_ADDON: '/a/addon.node' };
    expect(resolveProbeOptions({ env })).toMatchObject({ nvmlLibrary: '/a/nvml.so', cudaLibrary: '/a/cuda.so', addonPath: '/a/addon.node' });
    expect(resolveProbeOptions({ env, nvmlLibrary: '/b/nvml.so', cudaLibrary: false })).toMatchObject({ nvmlLibrary: '/b/nvml.so', cudaLibrary: null });
  });

  it('accepts process.env itself (not a plain object)', () => {
    expect(() => resolveProbeOptions({ env: process.env })).not.toThrow();
  });

  it.each([[{ timeoutMs: 0 }], [{ timeoutMs: 1.5 }], [{ nvmlLibrary: '' }], [{ cudaLibrary: true }], [{ unknown: 1 }], ['nope']])(
    'refuses %j with INVALID_OPTIONS',
    (options) => {
      expect(() => resolveProbeOptions(options)).toThrow(expect.objectContaining({ code: 'INVALID_OPTIONS' }));
    },
  );
});
