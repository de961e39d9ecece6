/**
 * Reads what the addon's open() reported: whether NVML loaded and initialised (else the typed
 * error to throw), what the CUDA driver said, and the per-probe context every sample is built
 * with. Pure: no I/O, testable with plain objects.
 */
import { GpuLayersError, nvmlErrorCode, type CudaStatus } from '../errors.js';
import { cudaResultName, describeNvmlReturn } from '../return-codes.js';
import type { RawCudaDevice, RawLibrary, RawOpen } from '../binding/raw-schema.js';
import type { CudaDevice } from '../sample/cuda-ordinals.js';
import type { SampleContext } from '../sample/build-sample.js';
import type { LibraryInfo } from '../sample/schema.js';

export interface ProbeInfo {
  library: SampleContext['library'];
  /** The driver version read at open (it decides the _v3 row size). */
  driverVersion: string | null;
  cuda: CudaStatus;
  /** CUDA's devices in CUDA's own order, as this process's environment shows them. */
  cudaDevices: readonly CudaDevice[];
}

export interface OpenOutcome {
  failure: GpuLayersError | null;
  info: ProbeInfo;
  context: SampleContext;
}

function libraryInfo(raw: RawLibrary): LibraryInfo {
  return { requested: raw.requested, loadedPath: raw.loadedPath, symbols: raw.symbols };
}

/** The addon reads at most this many CUDA devices (native/probe_session.cc). */
const MAX_CUDA_DEVICES = 1024;

function cudaStatus(raw: RawOpen['cuda']): CudaStatus {
  // A CUDA version is a positive int (12040 = 12.4); anything else is no version.
  const driverVersion = raw.rc.driverVersion === 0 && raw.driverVersion !== null && raw.driverVersion > 0 ? raw.driverVersion : null;
  const unavailable = (code: string, message: string): CudaStatus => ({
    available: false,
    driverVersion,
    deviceCount: null,
    error: { code, nvmlReturn: null, message },
  });
  if (!raw.requested) return unavailable('CUDA_UNAVAILABLE', 'CUDA was not loaded (cudaLibrary: false)');
  if (!raw.library.loaded) {
    return unavailable('CUDA_UNAVAILABLE', `could not load ${raw.library.requested}: ${raw.library.loadError ?? 'dlopen failed'}`);
  }
  if (raw.library.symbols.cuInit === null) {
    return unavailable('CUDA_UNAVAILABLE', `${raw.library.loadedPath ?? raw.library.requested} exports no cuInit: not a CUDA driver library`);
  }
  if (raw.initRc !== 0) {
    const name = cudaResultName(raw.initRc);
    return unavailable(name, `cuInit returned ${name} (${raw.initRc})`);
  }
  if (raw.rc.deviceCount !== 0 || raw.deviceCount === null) {
    const name = cudaResultName(raw.rc.deviceCount);
    return unavailable(name, `cuDeviceGetCount returned ${name} (${raw.rc.deviceCount})`);
  }
  if (raw.deviceCount < 0) return unavailable('VALUE_OUT_OF_RANGE', `cuDeviceGetCount reported ${raw.deviceCount} devices`);
  // CUDA listed its devices; a figure it could not give is null, and `error` says why.
  const countKnown = raw.deviceCount <= MAX_CUDA_DEVICES;
  let error: CudaStatus['error'] = null;
  if (!countKnown) {
    error = { code: 'VALUE_OUT_OF_RANGE', nvmlReturn: null, message: `cuDeviceGetCount reported ${raw.deviceCount} devices; only the first ${MAX_CUDA_DEVICES} were read` };
  } else if (driverVersion === null) {
    const name = raw.rc.driverVersion === 0 ? 'VALUE_OUT_OF_RANGE' : cudaResultName(raw.rc.driverVersion);
    error = { code: name, nvmlReturn: null, message: `cuDriverGetVersion ${raw.rc.driverVersion === 0 ? `reported ${raw.driverVersion}` : `returned ${name} (${raw.rc.driverVersion})`}: the driver's CUDA version is unknown` };
  }
  return { available: true, driverVersion, deviceCount: countKnown ? raw.deviceCount : null, error };
}

/** CUDA's UUID of a device as 32 hex digits; all zeros is no UUID (nothing was written). */
const ZERO_UUID = '0'.repeat(32);

function cudaDevice(raw: RawCudaDevice): CudaDevice {
  const ok = (key: string): boolean => raw.rc[key] === 0;
  const pciKnown = ok('pciDomain') && ok('pciBus') && ok('pciDevice');
  return {
    ordinal: raw.ordinal,
    name: ok('name') ? (raw.name ?? null) : null,
    uuidHex: ok('uuidHex') && raw.uuidHex !== ZERO_UUID ? (raw.uuidHex ?? null) : null,
    totalBytes: ok('totalMem') ? (raw.totalMem ?? null) : null,
    pci: pciKnown ? { domain: raw.pciDomain ?? 0, bus: raw.pciBus ?? 0, device: raw.pciDevice ?? 0 } : null,
  };
}

const LIBRARY_HINTS = [
  'install the NVIDIA driver (it provides libnvidia-ml.so.1)',
  'in a container, start it with the NVIDIA container runtime (docker run --gpus all ...)',
  'or name the library with GPU_LAYERS_NVML_LIB=/path/to/libnvidia-ml.so.1',
];

/**
 * dlerror's words when the file exists but is no shared library (a text file, a truncated or
 * foreign binary): glibc says "invalid ELF header", "file too short", "wrong ELF class"...
 */
const NOT_A_LIBRARY = /invalid ELF header|file too short|wrong ELF class|ELF file|only ET_DYN and ET_EXEC|not a dynamic executable|cannot dynamically load/i;

function openFailure(raw: RawOpen, cuda: CudaStatus): GpuLayersError | null {
  const library = raw.nvml.loadedPath ?? raw.nvml.requested;
  if (!raw.nvml.loaded && NOT_A_LIBRARY.test(raw.nvml.loadError ?? '')) {
    return new GpuLayersError(
      'NVML_LIBRARY_INVALID',
      `${raw.nvml.requested} is not a loadable shared library: ${raw.nvml.loadError}`,
      { library: raw.nvml.requested, hints: ['name the NVML library itself: GPU_LAYERS_NVML_LIB (or --nvml-lib) = /path/to/libnvidia-ml.so.1', LIBRARY_HINTS[0]!], cuda },
    );
  }
  if (!raw.nvml.loaded) {
    return new GpuLayersError(
      'NVML_LIBRARY_NOT_FOUND',
      `could not load the NVML library ${raw.nvml.requested}: ${raw.nvml.loadError ?? 'dlopen failed'}`,
      { library: raw.nvml.requested, hints: LIBRARY_HINTS, cuda },
    );
  }
  if (raw.nvml.symbols.init === null) {
    return new GpuLayersError('NVML_LIBRARY_INVALID', `${library} exports neither nvmlInit_v2 nor nvmlInit: it is not NVML`, {
      library,
      hints: LIBRARY_HINTS,
      cuda,
    });
  }
  if (raw.initRc !== 0) {
    const described = describeNvmlReturn(raw.initRc);
    const says = raw.initErrorString !== null ? `; NVML says "${raw.initErrorString}"` : '';
    return new GpuLayersError(
      nvmlErrorCode(raw.initRc),
      `NVML could not be initialised: ${described.message} (${described.name}, ${raw.initRc}${says}), using ${library}`,
      { nvmlReturn: raw.initRc, library, hints: described.hint !== undefined ? [described.hint] : [], cuda },
    );
  }
  return null;
}

export function interpretOpen(raw: RawOpen, nvmlCandidates: Readonly<Record<string, readonly string[]>>): OpenOutcome {
  const cuda = cudaStatus(raw.cuda);
  const [compute, graphics, mps] = raw.processRowBytes;
  const library: SampleContext['library'] = {
    nvml: libraryInfo(raw.nvml),
    cuda: raw.cuda.requested ? libraryInfo(raw.cuda.library) : null,
    processRowBytes: { compute, graphics, mps },
  };
  const cudaDevices = raw.cuda.devices.map(cudaDevice);
  return {
    failure: openFailure(raw, cuda),
    info: { library, driverVersion: raw.driverVersion, cuda, cudaDevices },
    context: { library, cuda, cudaDevices, nvmlResolved: raw.nvml.symbols, nvmlCandidates },
  };
}
