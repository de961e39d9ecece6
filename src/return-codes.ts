/**
 * The return codes of NVML (nvmlReturn_t) and of the CUDA driver (CUresult), by number: symbolic
 * name, the usual wording and, where an operator can act, what to do. From
 * shared/reference/nvml-abi.md 3.1 and 6.1; built in, so messages work even when the library
 * itself could not be loaded.
 */
export interface NvmlReturnCode {
  name: string;
  message: string;
  hint?: string;
}

const CODES: Record<number, NvmlReturnCode> = {
  0: { name: 'NVML_SUCCESS', message: 'success' },
  1: { name: 'NVML_ERROR_UNINITIALIZED', message: 'NVML was not initialised' },
  2: { name: 'NVML_ERROR_INVALID_ARGUMENT', message: 'invalid argument' },
  3: { name: 'NVML_ERROR_NOT_SUPPORTED', message: 'not supported by this device or driver' },
  4: {
    name: 'NVML_ERROR_NO_PERMISSION',
    message: 'insufficient permissions',
    hint: 'run as a user allowed to query the GPU (root, or the group owning /dev/nvidia*)',
  },
  5: { name: 'NVML_ERROR_ALREADY_INITIALIZED', message: 'already initialised' },
  6: { name: 'NVML_ERROR_NOT_FOUND', message: 'not found' },
  7: { name: 'NVML_ERROR_INSUFFICIENT_SIZE', message: 'buffer too small (the list kept growing between calls)' },
  8: { name: 'NVML_ERROR_INSUFFICIENT_POWER', message: 'a power cable is not connected properly' },
  9: {
    name: 'NVML_ERROR_DRIVER_NOT_LOADED',
    message: 'the NVIDIA kernel driver is not loaded',
    hint: 'check that this machine has an NVIDIA GPU and that its kernel module is loaded (lsmod | grep nvidia); in a container, run it with the NVIDIA container runtime',
  },
  10: { name: 'NVML_ERROR_TIMEOUT', message: 'the driver timed out' },
  11: { name: 'NVML_ERROR_IRQ_ISSUE', message: 'interrupt request issue' },
  12: {
    name: 'NVML_ERROR_LIBRARY_NOT_FOUND',
    message: 'a library NVML needs could not be found',
    hint: 'install the NVIDIA driver user-space libraries',
  },
  13: { name: 'NVML_ERROR_FUNCTION_NOT_FOUND', message: 'function not found in this NVML (older driver)' },
  14: { name: 'NVML_ERROR_CORRUPTED_INFOROM', message: 'the infoROM is corrupted' },
  15: {
    name: 'NVML_ERROR_GPU_IS_LOST',
    message: 'the GPU has fallen off the bus or is otherwise inaccessible',
    hint: 'check dmesg for Xid errors; the GPU usually needs a reset or a reboot',
  },
  16: { name: 'NVML_ERROR_RESET_REQUIRED', message: 'the GPU needs a reset', hint: 'reset the GPU (nvidia-smi -r) or reboot' },
  17: {
    name: 'NVML_ERROR_OPERATING_SYSTEM',
    message: 'the operating system or cgroups blocked the request',
    hint: 'in a container, check that the GPU devices are passed through',
  },
  18: {
    name: 'NVML_ERROR_LIB_RM_VERSION_MISMATCH',
    message: 'driver/library version mismatch',
    hint: 'the NVIDIA driver was upgraded without a reboot: reboot (or reload the nvidia kernel modules)',
  },
  19: { name: 'NVML_ERROR_IN_USE', message: 'the GPU is in use' },
  20: { name: 'NVML_ERROR_MEMORY', message: 'insufficient memory' },
  21: { name: 'NVML_ERROR_NO_DATA', message: 'no data' },
  22: { name: 'NVML_ERROR_VGPU_ECC_NOT_SUPPORTED', message: 'ECC is not supported on this vGPU' },
  23: { name: 'NVML_ERROR_INSUFFICIENT_RESOURCES', message: 'insufficient resources' },
  24: { name: 'NVML_ERROR_FREQ_NOT_SUPPORTED', message: 'frequency not supported' },
  25: { name: 'NVML_ERROR_ARGUMENT_VERSION_MISMATCH', message: 'struct version mismatch' },
  26: { name: 'NVML_ERROR_DEPRECATED', message: 'deprecated' },
  27: { name: 'NVML_ERROR_NOT_READY', message: 'not ready' },
  28: { name: 'NVML_ERROR_GPU_NOT_FOUND', message: 'GPU not found' },
  29: { name: 'NVML_ERROR_INVALID_STATE', message: 'invalid state' },
  30: { name: 'NVML_ERROR_RESET_TYPE_NOT_SUPPORTED', message: 'reset type not supported' },
  999: { name: 'NVML_ERROR_UNKNOWN', message: 'unknown error' },
};

/** Codes not in the table (newer drivers keep adding some) keep their number in the name. */
export function describeNvmlReturn(code: number): NvmlReturnCode {
  return CODES[code] ?? { name: `NVML_ERROR_${code}`, message: `NVML error ${code} (not known to this version of gpu-layers)` };
}

/** Every code the table knows, for the fault matrix and the docs. */
export const KNOWN_NVML_RETURN_CODES: readonly number[] = Object.keys(CODES).map(Number);

/** CUDA driver result codes the probe can meet (nvml-abi.md 6.1). */
const CUDA_CODES: Record<number, string> = {
  0: 'CUDA_SUCCESS',
  1: 'CUDA_ERROR_INVALID_VALUE',
  3: 'CUDA_ERROR_NOT_INITIALIZED',
  4: 'CUDA_ERROR_DEINITIALIZED',
  34: 'CUDA_ERROR_STUB_LIBRARY',
  100: 'CUDA_ERROR_NO_DEVICE',
  101: 'CUDA_ERROR_INVALID_DEVICE',
  500: 'CUDA_ERROR_NOT_FOUND',
  803: 'CUDA_ERROR_SYSTEM_DRIVER_MISMATCH',
  804: 'CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE',
  999: 'CUDA_ERROR_UNKNOWN',
};

export function cudaResultName(code: number): string {
  return CUDA_CODES[code] ?? `CUDA_ERROR_${code}`;
}
