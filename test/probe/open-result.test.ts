/** interpretOpen: which open readings are fatal, with which typed error, and the CUDA status. */
import { describe, expect, it } from 'vitest';

import { interpretOpen } from '../../src/probe/open-result.js';
import { rawOpen } from '../helpers/raw-readings.js';

describe('interpretOpen', () => {
  it('a healthy open has no failure and lists CUDA devices', () => {
    const outcome = interpretOpen(rawOpen(), {});
    expect(outcome.failure).toBeNull();
    expect(outcome.info.cuda).toEqual({ available: true, driverVersion: 12040, deviceCount: 1, error: null });
    expect(outcome.info.cudaDevices).toEqual([{ ordinal: 0, name: 'H100', uuidHex: 'ab'.repeat(16), totalBytes: 80, pci: { domain: 0, bus: 24, device: 0 } }]);
    expect(outcome.context.library.processRowBytes).toEqual({ compute: 24, graphics: 24, mps: 24 });
  });

  it('a library dlopen could not load is NVML_LIBRARY_NOT_FOUND with the loader message', () => {
    const raw = rawOpen({ nvml: { requested: 'libnvidia-ml.so.1', loaded: false, loadError: 'libnvidia-ml.so.1: cannot open shared object file', loadedPath: null, symbols: {} }, initRc: -1 });
    expect(interpretOpen(raw, {}).failure).toMatchObject({
      code: 'NVML_LIBRARY_NOT_FOUND',
      library: 'libnvidia-ml.so.1',
      message: 'could not load the NVML library libnvidia-ml.so.1: libnvidia-ml.so.1: cannot open shared object file',
    });
  });

  it('a file that is not a shared library (--nvml-lib /etc/passwd) is NVML_LIBRARY_INVALID, not NOT_FOUND', () => {
    const raw = rawOpen({ nvml: { requested: '/etc/passwd', loaded: false, loadError: '/etc/passwd: invalid ELF header', loadedPath: null, symbols: {} }, initRc: -1 });
    expect(interpretOpen(raw, {}).failure).toMatchObject({
      code: 'NVML_LIBRARY_INVALID',
      library: '/etc/passwd',
      message: '/etc/passwd is not a loadable shared library: /etc/passwd: invalid ELF header',
    });
  });

  it('a library without nvmlInit is NVML_LIBRARY_INVALID', () => {
    const raw = rawOpen({ nvml: { requested: '/lib/x.so', loaded: true, loadError: null, loadedPath: '/lib/x.so', symbols: { init: null } }, initRc: 13 });
    expect(interpretOpen(raw, {}).failure?.code).toBe('NVML_LIBRARY_INVALID');
  });

  it('an init failure carries NVML words, the hint and the CUDA status', () => {
    const raw = rawOpen({ initRc: 18, initErrorString: 'RM has detected an NVML/RM version mismatch.' });
    raw.cuda.initRc = 803;
    expect(interpretOpen(raw, {}).failure).toMatchObject({
      code: 'NVML_LIB_RM_VERSION_MISMATCH',
      nvmlReturn: 18,
      hints: [expect.stringContaining('reboot')],
      message: expect.stringContaining('NVML says "RM has detected an NVML/RM version mismatch."'),
      cuda: { available: false, error: { code: 'CUDA_ERROR_SYSTEM_DRIVER_MISMATCH' } },
    });
  });

  it('CUDA: not requested, not loadable, or not a CUDA library are each said plainly', () => {
    const notRequested = rawOpen();
    notRequested.cuda.requested = false;
    expect(interpretOpen(notRequested, {}).info.cuda.error?.message).toBe('CUDA was not loaded (cudaLibrary: false)');
    const missing = rawOpen();
    missing.cuda.library = { requested: 'libcuda.so.1', loaded: false, loadError: 'not found', loadedPath: null, symbols: {} };
    expect(interpretOpen(missing, {}).info.cuda.error?.message).toBe('could not load libcuda.so.1: not found');
    const wrong = rawOpen();
    wrong.cuda.library.symbols = { cuInit: null };
    expect(interpretOpen(wrong, {}).info.cuda.error?.message).toMatch(/exports no cuInit/);
  });
});
