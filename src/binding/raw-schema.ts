/**
 * zod schemas of what the addon returns. open() returns plain objects (rawOpenSchema). sample()
 * returns typed-array records (sampleTransferSchema, native/sample_layout.h), validated here and
 * then decoded by decode-sample.ts into readings (sample-reading-schema.ts). The addon is outside
 * input like any other; nothing reaches the sample builder without passing these.
 */
import * as z from 'zod/mini';

const rc = z.int();
/** A number as the addon converted it: NVML's "not available" is already null. */
const count = z.nullable(z.number());

const libraryReading = z.object({
  requested: z.string(),
  loaded: z.boolean(),
  loadError: z.nullable(z.string()),
  loadedPath: z.nullable(z.string()),
  /** Logical call -> the exported symbol it resolved to (null: none exported). */
  symbols: z.record(z.string(), z.nullable(z.string())),
});

const cudaDeviceReading = z.object({
  ordinal: z.int(),
  rc: z.record(z.string(), rc),
  name: z.optional(z.nullable(z.string())),
  uuidHex: z.optional(z.nullable(z.string())),
  totalMem: z.optional(count),
  pciDomain: z.optional(count),
  pciBus: z.optional(count),
  pciDevice: z.optional(count),
});

export const rawOpenSchema = z.object({
  nvml: libraryReading,
  initRc: rc,
  initErrorString: z.nullable(z.string()),
  driverVersion: z.nullable(z.string()),
  /** Row size per process list: compute, graphics, MPS (0 when the list function is missing). */
  processRowBytes: z.tuple([z.int(), z.int(), z.int()]),
  cuda: z.object({
    requested: z.boolean(),
    library: libraryReading,
    initRc: rc,
    driverVersion: count,
    deviceCount: count,
    rc: z.object({ driverVersion: rc, deviceCount: rc }),
    devices: z.array(cudaDeviceReading),
  }),
});

const f64 = z.instanceof(Float64Array);
const strings = z.array(z.nullable(z.string()));

/** What sample() returns: records of numbers and their strings, in the addon's sampleLayout. */
export const sampleTransferSchema = z.object({
  system: f64,
  systemStrings: strings,
  devices: f64,
  deviceStrings: strings,
  migDevices: f64,
  migStrings: strings,
  processRows: f64,
});

/** The field names of each record, as the addon exports them. */
export const sampleLayoutSchema = z.object({
  system: z.array(z.string()),
  device: z.array(z.string()),
  migDevice: z.array(z.string()),
  processRow: z.array(z.string()),
  systemStrings: z.array(z.string()),
  deviceStrings: z.array(z.string()),
  migStrings: z.array(z.string()),
});

export type RawOpen = z.infer<typeof rawOpenSchema>;
export type SampleTransfer = z.infer<typeof sampleTransferSchema>;
export type SampleLayoutNames = z.infer<typeof sampleLayoutSchema>;
export type RawLibrary = z.infer<typeof libraryReading>;
export type RawCudaDevice = z.infer<typeof cudaDeviceReading>;
