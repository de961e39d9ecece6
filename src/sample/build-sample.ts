/**
 * Builds the public Sample from one validated addon reading: NVML units to the schema's names,
 * not-available and implausible values to null with a reason, process lists merged, CUDA
 * ordinals matched. A pure function: the same code serves live probes and recorded readings.
 */
import { cudaOrdinalOf, type CudaDevice, type OrdinalTarget } from './cuda-ordinals.js';
import { checkedBytes, checkedInteger, notAvailable, notReported, nvmlFieldError } from './field-errors.js';
import { mergeProcessRows, type ProcessListSymbols } from './process-rows.js';
import type { Device, DeviceMemory, FieldError, FieldErrors, MigDevice, Sample } from './schema.js';
import { SAMPLE_SCHEMA_VERSION } from './schema-version.js';
import type { RawDevice, RawMemory, RawMigDevice, RawSample } from '../binding/sample-reading-schema.js';

/** What the probe learnt when it opened; the same for every sample it takes. */
export interface SampleContext {
  library: Sample['library'];
  cuda: Sample['cuda'];
  cudaDevices: readonly CudaDevice[];
  /** Logical NVML call -> exported symbol it resolved to (null: missing). */
  nvmlResolved: Readonly<Record<string, string | null>>;
  /** Logical NVML call -> the exported names tried, newest first. */
  nvmlCandidates: Readonly<Record<string, readonly string[]>>;
}

/** Which logical NVML call each `rc` key of the addon's readings comes from. */
const RC_CALL: Readonly<Record<string, string>> = {
  driverVersion: 'driverVersion',
  nvmlVersion: 'nvmlVersion',
  cudaDriverVersion: 'cudaDriverVersion',
  deviceCount: 'deviceCount',
  name: 'name',
  uuid: 'uuid',
  pci: 'pciInfo',
  memory: 'memoryInfo',
  bar1: 'bar1MemoryInfo',
  utilization: 'utilizationRates',
  migMode: 'migMode',
  maxMigDevices: 'maxMigDeviceCount',
  gpuInstanceId: 'gpuInstanceId',
  computeInstanceId: 'computeInstanceId',
};

const PROCESS_CALLS = ['computeProcesses', 'graphicsProcesses', 'mpsComputeProcesses'] as const;
/** The addon reads at most this many MIG slots of a GPU (native/nvml_collector.cc). */
const MAX_MIG_SLOTS = 64;
/** NVML_VALUE_NOT_AVAILABLE in a u32 field the addon passes through unconverted (PCI). */
const U32_NOT_AVAILABLE = 0xffffffff;

class Reasons {
  readonly processSymbols: ProcessListSymbols;

  constructor(private readonly context: SampleContext) {
    this.processSymbols = {
      resolved: PROCESS_CALLS.map((call) => context.nvmlResolved[call] ?? null),
      candidates: PROCESS_CALLS.map((call) => context.nvmlCandidates[call] ?? []),
    };
  }

  /** The reason for a non-zero rc under `rcKey` (a key of the addon's rc objects). */
  of(rcKey: string, rc: number, call: string = RC_CALL[rcKey] ?? rcKey): FieldError {
    return nvmlFieldError(rc, this.context.nvmlResolved[call] ?? null, this.context.nvmlCandidates[call]);
  }

  /** value when its call succeeded, else null with the reason recorded under `key` (a call that
   * succeeded with NVML's "not available" in the field is VALUE_NOT_AVAILABLE, not its rc). */
  pick<T>(value: T | null | undefined, rc: Record<string, number>, rcKey: string, errors: FieldErrors, key = rcKey): T | null {
    const code = rc[rcKey] ?? -1;
    if (code === 0 && value !== null && value !== undefined) return value;
    errors[key] = code === 0 ? notAvailable : this.of(rcKey, code);
    return null;
  }
}

const NO_MEMORY: DeviceMemory = { totalBytes: null, usedBytes: null, freeBytes: null, reservedBytes: null, version: null };

function buildMemory(raw: RawMemory | null | undefined, rc: number, reasons: Reasons, errors: FieldErrors): DeviceMemory {
  if (raw === null || raw === undefined) {
    errors.memory = reasons.of('memory', rc);
    return { ...NO_MEMORY };
  }
  const memory: DeviceMemory = {
    totalBytes: checkedBytes(raw.total, errors, 'memory.totalBytes'),
    usedBytes: checkedBytes(raw.used, errors, 'memory.usedBytes'),
    freeBytes: checkedBytes(raw.free, errors, 'memory.freeBytes'),
    reservedBytes: null,
    version: raw.version,
  };
  if (raw.version === 2) {
    memory.reservedBytes = checkedBytes(raw.reserved, errors, 'memory.reservedBytes');
  } else {
    errors['memory.reservedBytes'] = {
      code: 'NOT_REPORTED',
      nvmlReturn: null,
      message: 'nvmlDeviceGetMemoryInfo_v2 failed or is missing; the v1 call does not split out reserved memory (its usedBytes includes it)',
    };
  }
  return memory;
}

/** What full GPUs and MIG devices share: identity, memory and processes. `migInstances`: the
 * processes belong to MIG instances (a MIG device, or a GPU in MIG mode), so their ids are due. */
function buildShared(raw: RawDevice | RawMigDevice, reasons: Reasons, errors: FieldErrors, migInstances: boolean) {
  return {
    uuid: reasons.pick(raw.uuid, raw.rc, 'uuid', errors),
    name: reasons.pick(raw.name, raw.rc, 'name', errors),
    memory: buildMemory(raw.memory, raw.rc.memory ?? -1, reasons, errors),
    processes: mergeProcessRows(raw.processRows, raw.processLists, reasons.processSymbols, errors, migInstances),
  };
}

function cudaOrdinal(target: OrdinalTarget, context: SampleContext, errors: FieldErrors): number | null {
  const result = cudaOrdinalOf(target, context.cuda, context.cudaDevices);
  if (result.error !== null) errors.cudaOrdinal = result.error;
  return result.ordinal;
}

function instanceId(raw: RawMigDevice, key: 'gpuInstanceId' | 'computeInstanceId', reasons: Reasons, errors: FieldErrors): number | null {
  const id = reasons.pick(raw[key], raw.rc, key, errors);
  return id === null ? null : checkedInteger(id, errors, key);
}

function buildMigDevice(raw: RawMigDevice, context: SampleContext, reasons: Reasons): MigDevice {
  const errors: FieldErrors = {};
  const handleRc = raw.rc.handle ?? -1;
  if (handleRc !== 0) {
    errors.device = reasons.of('handle', handleRc, 'migDeviceHandleByIndex');
    return { slot: raw.slot, uuid: null, name: null, gpuInstanceId: null, computeInstanceId: null, cudaOrdinal: null, memory: { ...NO_MEMORY }, processes: null, errors };
  }
  const shared = buildShared(raw, reasons, errors, true);
  return {
    slot: raw.slot,
    uuid: shared.uuid,
    name: shared.name,
    gpuInstanceId: instanceId(raw, 'gpuInstanceId', reasons, errors),
    computeInstanceId: instanceId(raw, 'computeInstanceId', reasons, errors),
    cudaOrdinal: cudaOrdinal({ uuid: shared.uuid, pci: null, migEnabled: false }, context, errors),
    memory: shared.memory,
    processes: shared.processes,
    errors,
  };
}

function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, '0');
}

/**
 * The PCI location, or null with its reason: a struct NVML reported but did not fill (no bus id
 * at all), or a field holding NVML's "not available" or a value no PCI address can have.
 */
function checkedPci(pci: NonNullable<RawDevice['pci']>, errors: FieldErrors): Device['pci'] {
  if (pci.busId === '' && pci.busIdLegacy === '') {
    errors.pci = notReported('NVML reported success but left the PCI info empty (no bus id)');
    return null;
  }
  const fields = [pci.domain, pci.bus, pci.device, pci.pciDeviceId, pci.pciSubSystemId];
  if (fields.some((value) => value === U32_NOT_AVAILABLE || Number.isNaN(value))) {
    errors.pci = notAvailable;
    return null;
  }
  const checked: FieldErrors = {};
  if (checkedInteger(pci.bus, checked, 'pci', 0xff) === null || checkedInteger(pci.device, checked, 'pci', 0x1f) === null) {
    errors.pci = checked.pci!;
    return null;
  }
  return buildPci(pci);
}

/** MIG mode as NVML gave it: 0 or 1; anything else is not a mode. */
function checkedMigMode(value: number | null, errors: FieldErrors, key: string): number | null {
  if (value === null) {
    errors[key] = notAvailable;
    return null;
  }
  return checkedInteger(value, errors, key, 1);
}

/**
 * The MIG devices of a GPU in MIG mode. When the handle call failed the same way for every slot
 * the addon tried (a missing or failing nvmlDeviceGetMigDeviceHandleByIndex), those are not MIG
 * devices but one failure: mig.devices is empty and says why.
 */
function buildMigDevices(raw: RawDevice, context: SampleContext, reasons: Reasons, errors: FieldErrors): MigDevice[] {
  const readings = raw.migDevices ?? [];
  const maxRc = raw.rc.maxMigDevices ?? -1;
  const maxSlots = maxRc === 0 ? (raw.maxMigDevices ?? null) : null;
  // (A failed count call has its reason already.)
  if (maxRc === 0 && (maxSlots === null || maxSlots > MAX_MIG_SLOTS)) {
    errors['mig.devices'] =
      maxSlots === null
        ? notAvailable
        : { code: 'VALUE_OUT_OF_RANGE', nvmlReturn: null, message: `NVML reports ${maxSlots} MIG slots; only the first ${MAX_MIG_SLOTS} were read` };
  }
  const tried = Math.min(maxSlots ?? MAX_MIG_SLOTS, MAX_MIG_SLOTS);
  const firstRc = readings[0]?.rc.handle ?? 0;
  if (readings.length > 0 && readings.length === tried && firstRc !== 0 && readings.every((mig) => mig.rc.handle === firstRc)) {
    errors['mig.devices'] = reasons.of('handle', firstRc, 'migDeviceHandleByIndex');
    return [];
  }
  return readings.map((mig) => buildMigDevice(mig, context, reasons));
}

function buildPci(pci: NonNullable<RawDevice['pci']>): NonNullable<Device['pci']> {
  return {
    // Only nvmlDeviceGetPciInfo_v3 fills busId; older calls give the fields it is made of.
    busId: pci.busId !== '' ? pci.busId : `${hex(pci.domain, 8)}:${hex(pci.bus, 2)}:${hex(pci.device, 2)}.0`,
    domain: pci.domain,
    bus: pci.bus,
    device: pci.device,
    pciDeviceId: pci.pciDeviceId,
    pciSubSystemId: pci.pciSubSystemId,
  };
}

function buildDevice(raw: RawDevice, context: SampleContext, reasons: Reasons): Device {
  const errors: FieldErrors = {};
  const handleRc = raw.rc.handle ?? -1;
  if (handleRc !== 0) {
    errors.device = reasons.of('handle', handleRc, 'handleByIndex');
    return { index: raw.index, uuid: null, name: null, cudaOrdinal: null, pci: null, memory: { ...NO_MEMORY }, bar1: null, utilization: null, mig: null, processes: null, errors };
  }
  const shared = buildShared(raw, reasons, errors, raw.rc.migMode === 0 && raw.migMode?.current === 1);
  const pci = reasons.pick(raw.pci, raw.rc, 'pci', errors);
  const bar1 = reasons.pick(raw.bar1, raw.rc, 'bar1', errors);
  const utilization = reasons.pick(raw.utilization, raw.rc, 'utilization', errors);
  const rawMigMode = reasons.pick(raw.migMode, raw.rc, 'migMode', errors, 'mig');
  const migCurrent = rawMigMode === null ? null : checkedMigMode(rawMigMode.current, errors, 'mig');
  const migMode = rawMigMode === null || migCurrent === null ? null : rawMigMode;
  const migEnabled = migCurrent === 1;
  if (migEnabled && (raw.rc.maxMigDevices ?? -1) !== 0) {
    errors['mig.devices'] = reasons.of('maxMigDevices', raw.rc.maxMigDevices ?? -1);
  }
  const device: Device = {
    index: raw.index,
    uuid: shared.uuid,
    name: shared.name,
    cudaOrdinal: null,
    pci: pci === null ? null : checkedPci(pci, errors),
    memory: shared.memory,
    bar1:
      bar1 === null
        ? null
        : {
            totalBytes: checkedBytes(bar1.total, errors, 'bar1.totalBytes'),
            usedBytes: checkedBytes(bar1.used, errors, 'bar1.usedBytes'),
            freeBytes: checkedBytes(bar1.free, errors, 'bar1.freeBytes'),
          },
    utilization:
      utilization === null
        ? null
        : {
            gpuPercent: checkedInteger(utilization.gpu, errors, 'utilization.gpuPercent', 100),
            memoryPercent: checkedInteger(utilization.memory, errors, 'utilization.memoryPercent', 100),
          },
    mig:
      migMode === null
        ? null
        : {
            enabled: migEnabled,
            pendingEnabled: (() => {
              const pending = checkedMigMode(migMode.pending, errors, 'mig.pendingEnabled');
              return pending === null ? null : pending === 1;
            })(),
            devices: migEnabled ? buildMigDevices(raw, context, reasons, errors) : [],
          },
    processes: shared.processes,
    errors,
  };
  device.cudaOrdinal = cudaOrdinal({ uuid: device.uuid, pci: device.pci, migEnabled }, context, errors);
  return device;
}

/** NVML's CUDA version is an int: -1 is "not available", other negatives are not versions. */
function cudaVersion(value: number | null, errors: FieldErrors): number | null {
  if (value === null) return null;
  if (value === -1) {
    errors['driver.cudaDriverVersion'] = notAvailable;
    return null;
  }
  return checkedInteger(value, errors, 'driver.cudaDriverVersion');
}

/**
 * The builder of one probe's samples: its Reasons (the symbol lookups behind each failed call's
 * reason) are the same for every sample, so they are made once, here.
 */
export function sampleBuilder(context: SampleContext): (raw: RawSample) => Sample {
  const reasons = new Reasons(context);
  return (raw) => build(raw, context, reasons);
}

/** One sample (tests and one-off readings; a probe keeps a sampleBuilder). */
export function buildSample(raw: RawSample, context: SampleContext): Sample {
  return build(raw, context, new Reasons(context));
}

function build(raw: RawSample, context: SampleContext, reasons: Reasons): Sample {
  const errors: FieldErrors = {};
  const sample: Sample = {
    schemaVersion: SAMPLE_SCHEMA_VERSION,
    takenAt: new Date(raw.startedAtMs).toISOString(),
    durationMs: raw.durationMs,
    driver: {
      version: reasons.pick(raw.driverVersion, raw.rc, 'driverVersion', errors, 'driver.version'),
      nvmlVersion: reasons.pick(raw.nvmlVersion, raw.rc, 'nvmlVersion', errors, 'driver.nvmlVersion'),
      cudaDriverVersion: cudaVersion(reasons.pick(raw.cudaDriverVersion, raw.rc, 'cudaDriverVersion', errors, 'driver.cudaDriverVersion'), errors),
    },
    library: context.library,
    cuda: context.cuda,
    devices: raw.devices.map((device) => buildDevice(device, context, reasons)),
    errors,
  };
  if (raw.rc.deviceCount !== 0) {
    errors.devices = reasons.of('deviceCount', raw.rc.deviceCount);
  } else if (raw.deviceCount !== null && raw.deviceCount > raw.devices.length) {
    // The addon reads at most 1024 devices; a larger count is a driver fault, not a host.
    errors.devices = {
      code: 'VALUE_OUT_OF_RANGE',
      nvmlReturn: null,
      message: `NVML reports ${raw.deviceCount} devices; only the first ${raw.devices.length} were read`,
    };
  }
  return sample;
}
