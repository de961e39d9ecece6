/**
 * The mock libraries' scenario as a typed object: devices, processes, versions and the faults to
 * inject. Validated with zod, then written in the line format the C side reads
 * (native/mock/README.md documents both).
 */
import * as z from 'zod/mini';

const nonNegative = z.int().check(z.nonnegative());
/** A u64 field: bytes as a number (or a bigint past 2^53, to inject implausible values, up to
 * 2^64-1, which is NVML_VALUE_NOT_AVAILABLE too), or 'na' for NVML_VALUE_NOT_AVAILABLE. */
const u64 = z.union([nonNegative, z.bigint().check(z.nonnegative(), z.maximum(2n ** 64n - 1n)), z.literal('na')]);
const u32 = z.union([z.int().check(z.nonnegative(), z.maximum(0xffffffff)), z.literal('na')]);
/** NVML_VALUE_NOT_AVAILABLE where a field can hold it, to test what a reader makes of it. */
const na = z.literal('na');
/** One line of the file: no line breaks, no '#' (the comment sign). */
const text = z.string().check(z.minLength(1), z.maxLength(120), z.regex(/^[^\n\r#]*$/, 'must not contain line breaks or #'));
const word = z.string().check(z.minLength(1), z.maxLength(120), z.regex(/^[^\s#]+$/, 'one word: no spaces or #'));
const symbolName = z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'an exported symbol name'));
const symbol = z.string().check(z.regex(/^([A-Za-z_][A-Za-z0-9_]*|\*)$/, 'an exported symbol name, or * for every symbol'));
const returnCode = z.int().check(z.minimum(-2147483648), z.maximum(2147483647));
const bit = z.union([z.literal(0), z.literal(1), na]);

const processSchema = z.strictObject({
  type: z.enum(['compute', 'graphics', 'mps']),
  pid: z.int().check(z.positive(), z.maximum(0xffffffff)),
  usedBytes: u64,
  /** Defaults to the MIG device's ids under a MIG device, else "not available" (MIG off). */
  gpuInstanceId: z.optional(u32),
  computeInstanceId: z.optional(u32),
});

const memorySchema = z.strictObject({ total: u64, reserved: u64, used: u64, free: u64 });

const migDeviceSchema = z.strictObject({
  slot: z.int().check(z.nonnegative(), z.maximum(254)),
  gpuInstanceId: z.union([nonNegative, na]),
  computeInstanceId: z.union([nonNegative, na]),
  name: z.optional(text),
  uuid: z.optional(word),
  memory: z.optional(memorySchema),
  contextBytes: z.optional(u64),
  processes: z.optional(z.array(processSchema)),
});

const deviceSchema = z.strictObject({
  name: z.optional(text),
  uuid: z.optional(word),
  pci: z.optional(
    z.strictObject({
      domain: z.union([z.int().check(z.nonnegative(), z.maximum(0xffffffff)), na]),
      bus: z.union([z.int().check(z.nonnegative(), z.maximum(255)), na]),
      device: z.union([z.int().check(z.nonnegative(), z.maximum(31)), na]),
      pciDeviceId: z.union([z.int().check(z.nonnegative(), z.maximum(0xffffffff)), na]),
      pciSubSystemId: z.union([z.int().check(z.nonnegative(), z.maximum(0xffffffff)), na]),
    }),
  ),
  memory: z.optional(memorySchema),
  bar1: z.optional(z.strictObject({ total: u64, used: u64, free: u64 })),
  /** Percent; NVML's fields are 32-bit. */
  utilization: z.optional(z.strictObject({ gpu: u32, memory: u32 })),
  /** 1 = MIG enabled; 'na' = NVML_VALUE_NOT_AVAILABLE. */
  migMode: z.optional(z.strictObject({ current: bit, pending: bit })),
  /** What a CUDA context costs here: the bytes NVML lists for a process that retained one
   * through the mock CUDA library (gpu-layers calibrate measures it). */
  contextBytes: z.optional(u64),
  processes: z.optional(z.array(processSchema)),
  migDevices: z.optional(z.array(migDeviceSchema)),
});

/** Where an injected code or delay applies: device omitted = every device (and system calls);
 * migSlot (with device) = one MIG device of it. */
const target = { symbol, device: z.optional(nonNegative), migSlot: z.optional(nonNegative) };
type Target = { device?: number | undefined; migSlot?: number | undefined };
const slotNeedsDevice = z.refine<Target>((entry) => entry.migSlot === undefined || entry.device !== undefined, 'migSlot needs device');
const rcInjection = z.strictObject({ ...target, rc: returnCode }).check(slotNeedsDevice);
const delayInjection = z.strictObject({ ...target, ms: nonNegative }).check(slotNeedsDevice);
const countInjection = z.strictObject({ ...target, count: z.int().check(z.nonnegative(), z.maximum(0xffffffff)) }).check(slotNeedsDevice);

export const scenarioSchema = z.strictObject({
  driverVersion: z.optional(word),
  nvmlVersion: z.optional(word),
  /** cuDriverGetVersion and nvmlSystemGetCudaDriverVersion: 12040 = 12.4 ('na': -1). */
  cudaDriverVersion: z.optional(z.union([returnCode, na])),
  /** What nvmlInit_v2 / nvmlInit / nvmlInitWithFlags return (9 = driver not loaded). */
  nvmlInitRc: z.optional(returnCode),
  /** What cuInit returns (100 = no device). */
  cudaInitRc: z.optional(returnCode),
  /** Row size the _v3 process functions write: 24 normally, 32 like drivers 535.43-535.86. */
  processRowBytes: z.optional(z.union([z.literal(16), z.literal(24), z.literal(32)])),
  /** Symbols the library pretends not to export (an older driver). */
  hide: z.optional(z.array(symbolName)),
  /** String functions that fill the whole buffer without a terminating NUL. */
  unterminated: z.optional(z.array(symbolName)),
  /** The call returns `rc` instead of working; rc 0 = success without writing any output. */
  rc: z.optional(z.array(rcInjection)),
  delay: z.optional(z.array(delayInjection)),
  /** A count-returning call (device count, process list, max MIG device count, cuDeviceGetCount)
   * claims `count`: a driver reporting more than any buffer holds. */
  count: z.optional(z.array(countInjection)),
  /** Processes that appear between one process-list call and the next: `processes` more after
   * each of the first `calls` calls of every list ('always': after every call). */
  grow: z.optional(
    z.strictObject({
      processes: z.int().check(z.positive()),
      calls: z.optional(z.union([z.int().check(z.positive()), z.literal('always')])),
    }),
  ),
  /** NVML indices in the order CUDA enumerates them. */
  cudaOrder: z.optional(z.array(nonNegative)),
  devices: z.array(deviceSchema),
});

export type Scenario = z.input<typeof scenarioSchema>;
export type ScenarioDevice = z.input<typeof deviceSchema>;
export type ScenarioProcess = z.input<typeof processSchema>;
