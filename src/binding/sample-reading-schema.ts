/**
 * The readings decodeSample() builds from the addon's sample records: NVML's own field names and
 * units, a value or null per call, every call's return code in `rc`. Runtime code only needs the
 * types; the schema checks the decoder in the tests. Kept apart from raw-schema.ts so that a probe
 * does not construct these schemas on every start.
 */
import * as z from 'zod/mini';

const rc = z.int();
/** A number as the addon converted it: NVML's "not available" is null. */
const count = z.nullable(z.number());

const memoryReading = z.object({
  version: z.union([z.literal(1), z.literal(2)]),
  total: count,
  reserved: count,
  free: count,
  used: count,
});

const processListStatus = z.object({ rc, rowBytes: z.int() });

/** Fields a full GPU and a MIG device share; absent when the handle could not be had. */
const commonFields = {
  name: z.optional(z.nullable(z.string())),
  uuid: z.optional(z.nullable(z.string())),
  memory: z.optional(z.nullable(memoryReading)),
  /** Five numbers a row: kind (0 compute, 1 graphics, 2 MPS), pid, usedGpuMemory, GI id, CI id. */
  processRows: z.optional(z.instanceof(Float64Array)),
  processLists: z.optional(z.tuple([processListStatus, processListStatus, processListStatus])),
};

const migReadingSchema = z.object({
  slot: z.int(),
  rc: z.record(z.string(), rc),
  ...commonFields,
  gpuInstanceId: z.optional(count),
  computeInstanceId: z.optional(count),
});

const deviceReadingSchema = z.object({
  index: z.int(),
  rc: z.record(z.string(), rc),
  ...commonFields,
  pci: z.optional(
    z.nullable(
      z.object({
        busId: z.string(),
        busIdLegacy: z.string(),
        domain: z.number(),
        bus: z.number(),
        device: z.number(),
        pciDeviceId: z.number(),
        pciSubSystemId: z.number(),
      }),
    ),
  ),
  bar1: z.optional(z.nullable(z.object({ total: count, free: count, used: count }))),
  utilization: z.optional(z.nullable(z.object({ gpu: count, memory: count }))),
  migMode: z.optional(z.nullable(z.object({ current: count, pending: count }))),
  maxMigDevices: z.optional(count),
  migDevices: z.optional(z.array(migReadingSchema)),
});

/** A decoded sample reading (what decodeSample returns; checked against this in tests). */
export const sampleReadingSchema = z.object({
  startedAtMs: z.number(),
  durationMs: z.number(),
  driverVersion: z.nullable(z.string()),
  nvmlVersion: z.nullable(z.string()),
  cudaDriverVersion: count,
  deviceCount: count,
  rc: z.object({ driverVersion: rc, nvmlVersion: rc, cudaDriverVersion: rc, deviceCount: rc }),
  devices: z.array(deviceReadingSchema),
});

export type RawSample = z.infer<typeof sampleReadingSchema>;
export type RawDevice = z.infer<typeof deviceReadingSchema>;
export type RawMigDevice = z.infer<typeof migReadingSchema>;
export type RawMemory = z.infer<typeof memoryReading>;
