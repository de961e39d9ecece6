/**
 * The public Sample: one probe reading of every device and its processes, the driver layer of
 * gpu-layers. The source of truth for the TypeScript types (z.infer) and for the published JSON
 * Schema (dist/sample.schema.json). Bytes are integers in bytes; anything unknown is null, and
 * the `errors` map of the object holding it says why, keyed by the field's name.
 */
import * as z from 'zod/mini';

import { SAMPLE_SCHEMA_VERSION } from './schema-version.js';

export { SAMPLE_SCHEMA_VERSION };

export const fieldErrorSchema = z.object({
  /** NVML's return code name (NVML_ERROR_NOT_SUPPORTED, ...) or one of gpu-layers' own:
   * VALUE_NOT_AVAILABLE, VALUE_OUT_OF_RANGE, ROWS_IMPLAUSIBLE, STRING_UNTERMINATED, NOT_REPORTED,
   * NOT_QUERIED, CUDA_UNAVAILABLE, NOT_VISIBLE_TO_CUDA, MIG_ENABLED, PROCESS_NOT_VISIBLE. */
  code: z.string(),
  /** NVML's numeric return code, when the reason is one. */
  nvmlReturn: z.nullable(z.int()),
  message: z.string(),
});

const errorsSchema = z.record(z.string(), fieldErrorSchema);
const count = z.int().check(z.nonnegative());
const bytesSchema = z.nullable(count);
const percentSchema = z.nullable(z.int().check(z.minimum(0), z.maximum(100)));

export const processTypeSchema = z.enum(['compute', 'graphics', 'mps']);

export const processSchema = z.object({
  pid: z.int().check(z.positive()),
  /** NVML usedGpuMemory: everything the process holds on this device (the driver layer). */
  usedBytes: bytesSchema,
  /** Which of NVML's lists reported the process. */
  types: z.array(processTypeSchema).check(z.minLength(1)),
  /** MIG instance ids; null when MIG is off. */
  gpuInstanceId: z.nullable(count),
  computeInstanceId: z.nullable(count),
  /** The command line from /proc, when asked for and visible (host PID namespace). */
  command: z.optional(z.nullable(z.string())),
  /** Why a field of this process is null; present only when one is. */
  errors: z.optional(errorsSchema),
});

export const deviceMemorySchema = z.object({
  totalBytes: bytesSchema,
  /** Allocated device memory (NVML v2 `used`; excludes reserved). */
  usedBytes: bytesSchema,
  freeBytes: bytesSchema,
  /** Reserved by the driver and firmware; null with the v1 fallback, whose used includes it. */
  reservedBytes: bytesSchema,
  /** Which NVML call answered: 2 = nvmlDeviceGetMemoryInfo_v2, 1 = the v1 fallback. */
  version: z.nullable(z.union([z.literal(1), z.literal(2)])),
});

export const pciSchema = z.object({
  /** NVML's bus id, 8-digit domain: "00000000:18:00.0". */
  busId: z.string(),
  domain: count,
  bus: count,
  device: count,
  /** (device id << 16) | vendor id, e.g. 0x233010de for an H100. */
  pciDeviceId: count,
  pciSubSystemId: count,
});

export const migDeviceSchema = z.object({
  /** Slot under the parent (nvmlDeviceGetMigDeviceHandleByIndex). */
  slot: count,
  uuid: z.nullable(z.string()),
  name: z.nullable(z.string()),
  gpuInstanceId: z.nullable(count),
  computeInstanceId: z.nullable(count),
  cudaOrdinal: z.nullable(count),
  memory: deviceMemorySchema,
  processes: z.nullable(z.array(processSchema)),
  errors: errorsSchema,
});

export const deviceSchema = z.object({
  /** NVML's index (not the CUDA ordinal: see cudaOrdinal). */
  index: count,
  uuid: z.nullable(z.string()),
  name: z.nullable(z.string()),
  /** Which `cuda:N` this device is for a CUDA program started with this environment
   * (CUDA_VISIBLE_DEVICES, CUDA_DEVICE_ORDER); null when CUDA is unavailable or hides it. */
  cudaOrdinal: z.nullable(count),
  pci: z.nullable(pciSchema),
  memory: deviceMemorySchema,
  bar1: z.nullable(z.object({ totalBytes: bytesSchema, usedBytes: bytesSchema, freeBytes: bytesSchema })),
  /** Percent of time busy over the driver's last sample period (memory = controller, not capacity). */
  utilization: z.nullable(z.object({ gpuPercent: percentSchema, memoryPercent: percentSchema })),
  mig: z.nullable(
    z.object({
      enabled: z.boolean(),
      pendingEnabled: z.nullable(z.boolean()),
      devices: z.array(migDeviceSchema),
    }),
  ),
  /** Processes on the device (compute, graphics and MPS lists merged per pid and MIG instance);
   * null when the compute list could not be read. */
  processes: z.nullable(z.array(processSchema)),
  errors: errorsSchema,
});

export const librarySchema = z.object({
  /** What was asked for (a name resolved by the dynamic linker, or a path). */
  requested: z.string(),
  /** The file the dynamic linker mapped. */
  loadedPath: z.nullable(z.string()),
  /** Logical call -> exported symbol used (null: the library exports none of its names). */
  symbols: z.record(z.string(), z.nullable(z.string())),
});

export const sampleSchema = z.object({
  schemaVersion: z.literal(SAMPLE_SCHEMA_VERSION),
  /** When the native sample started, ISO 8601. */
  takenAt: z.string(),
  /** Time spent in NVML for this sample. */
  durationMs: z.number().check(z.nonnegative()),
  driver: z.object({
    version: z.nullable(z.string()),
    nvmlVersion: z.nullable(z.string()),
    /** The CUDA version the driver supports, as NVML encodes it: 12040 = 12.4. */
    cudaDriverVersion: z.nullable(z.int()),
  }),
  library: z.object({
    nvml: librarySchema,
    cuda: z.nullable(librarySchema),
    /** Row size the addon decodes each process list with (nvml-abi.md 1.2): 24 or 32 for _v3. */
    processRowBytes: z.object({
      compute: z.int(),
      graphics: z.int(),
      mps: z.int(),
    }),
  }),
  cuda: z.object({
    /** Whether the CUDA driver could enumerate devices (cuInit succeeded). */
    available: z.boolean(),
    driverVersion: z.nullable(z.int()),
    deviceCount: z.nullable(count),
    error: z.nullable(fieldErrorSchema),
  }),
  devices: z.array(deviceSchema),
  errors: errorsSchema,
});

// Interfaces that extend the inferred types, not aliases of them: editors and compiler errors
// then say `Sample` instead of spelling out the whole object type zod infers.
export interface FieldError extends z.infer<typeof fieldErrorSchema> {}
export type FieldErrors = z.infer<typeof errorsSchema>;
export type ProcessType = z.infer<typeof processTypeSchema>;
export interface GpuProcess extends z.infer<typeof processSchema> {}
export interface DeviceMemory extends z.infer<typeof deviceMemorySchema> {}
export interface MigDevice extends z.infer<typeof migDeviceSchema> {}
export interface Device extends z.infer<typeof deviceSchema> {}
export interface LibraryInfo extends z.infer<typeof librarySchema> {}
export interface Sample extends z.infer<typeof sampleSchema> {}
