/**
 * gpu-layers, the library: open a probe, take samples of every GPU and its processes. Importing
 * has no side effects; the native addon loads on the first openProbe().
 */
export { openProbe, Probe } from './probe/probe.js';
export type { ProbeInfo } from './probe/open-result.js';
export { probeOptionsSchema, type ProbeOptions } from './probe/options.js';
export {
  sampleSchema,
  deviceSchema,
  migDeviceSchema,
  processSchema,
  fieldErrorSchema,
  SAMPLE_SCHEMA_VERSION,
  type Sample,
  type Device,
  type MigDevice,
  type GpuProcess,
  type DeviceMemory,
  type FieldError,
  type FieldErrors,
  type ProcessType,
  type LibraryInfo,
} from './sample/schema.js';
export type { CudaDevice } from './sample/cuda-ordinals.js';
export { GpuLayersError, isGpuLayersError, type GpuLayersErrorCode, type CudaStatus } from './errors.js';
export { describeNvmlReturn, type NvmlReturnCode } from './return-codes.js';
