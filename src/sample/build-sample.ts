/**
 * Builds the public Sample from one validated addon reading: NVML units to the schema's names,
 * not-available and implausible values to null with a reason, process lists merged, CUDA
 * ordinals matched. A pure function: the same code serves live probes and recorded readings.
 */
import { cudaOrdinalOf, type CudaDevice } from './cuda-ordinals.js';
import { checkedBytes, checkedInteger, nvmlFieldError } from './field-errors.js';
import { mergeProcessRows, type ProcessListSymbols } from './process-rows.js';
import type { Device, DeviceMemory, FieldError, FieldErrors, MigDevice, Sample } from './schema.js';
import { SAMPLE_SCHEMA_VERSION } from './schema-version.js';
import type { RawDevice, RawMemory, RawMigDevice, RawSample } from '../native/sample-reading-schema.js';

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

  /** value when its call succeeded, else null with the reason recorded under `key`. */
  pick<T>(value: T | null | undefined, rc: Record<string, number>, rcKey: string, errors: FieldErrors, key = rcKey): T | null {
    const code = rc[rcKey] ?? -1;
    if (code === 0 && value !== null && value !== undefined) return value;
    errors[key] = this.of(rcKey, code);
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

function handleFailed(errors: FieldErrors, reason: FieldError): void {
  errors.device = reason;
}

function buildMigDevice(raw: RawMigDevice, context: SampleContext, reasons: Reasons): MigDevice {
  const errors: FieldErrors = {};
  const device: MigDevice = {
    slot: raw.slot,
    uuid: null,
    name: null,
    gpuInstanceId: null,
    computeInstanceId: null,
    cudaOrdinal: null,
    memory: { ...NO_MEMORY },
    processes: null,
    errors,
  };
  const handleRc = raw.rc.handle ?? -1;
  if (handleRc !== 0) {
    handleFailed(errors, reasons.of('handle', handleRc, 'migDeviceHandleByIndex'));
    return device;
  }
  device.uuid = reasons.pick(raw.uuid, raw.rc, 'uuid', errors);
  device.name = reasons.pick(raw.name, raw.rc, 'name', errors);
  const gi = reasons.pick(raw.gpuInstanceId, raw.rc, 'gpuInstanceId', errors);
  device.gpuInstanceId = gi === null ? null : checkedInteger(gi, errors, 'gpuInstanceId');
  const ci = reasons.pick(raw.computeInstanceId, raw.rc, 'computeInstanceId', errors);
  device.computeInstanceId = ci === null ? null : checkedInteger(ci, errors, 'computeInstanceId');
  device.memory = buildMemory(raw.memory, raw.rc.memory ?? -1, reasons, errors);
  device.processes = mergeProcessRows(raw.processRows, raw.processLists, reasons.processSymbols, errors);
  const ordinal = cudaOrdinalOf({ uuid: device.uuid, pci: null, migEnabled: false }, context.cuda, context.cudaDevices);
  device.cudaOrdinal = ordinal.ordinal;
  if (ordinal.error !== null) errors.cudaOrdinal = ordinal.error;
  return device;
}

function hex(value: number, digits: number): string {
  return value.toString(16).toUpperCase().padStart(digits, '0');
}

function buildDevice(raw: RawDevice, context: SampleContext, reasons: Reasons): Device {
  const errors: FieldErrors = {};
  const device: Device = {
    index: raw.index,
    uuid: null,
    name: null,
    cudaOrdinal: null,
    pci: null,
    memory: { ...NO_MEMORY },
    bar1: null,
    utilization: null,
    mig: null,
    processes: null,
    errors,
  };
  const handleRc = raw.rc.handle ?? -1;
  if (handleRc !== 0) {
    handleFailed(errors, reasons.of('handle', handleRc, 'handleByIndex'));
    return device;
  }
  device.uuid = reasons.pick(raw.uuid, raw.rc, 'uuid', errors);
  device.name = reasons.pick(raw.name, raw.rc, 'name', errors);

  const pci = reasons.pick(raw.pci, raw.rc, 'pci', errors);
  if (pci !== null) {
    device.pci = {
      // Only nvmlDeviceGetPciInfo_v3 fills busId; older calls give the fields it is made of.
      busId: pci.busId !== '' ? pci.busId : `${hex(pci.domain, 8)}:${hex(pci.bus, 2)}:${hex(pci.device, 2)}.0`,
      domain: pci.domain,
      bus: pci.bus,
      device: pci.device,
      pciDeviceId: pci.pciDeviceId,
      pciSubSystemId: pci.pciSubSystemId,
    };
  }
  device.memory = buildMemory(raw.memory, raw.rc.memory ?? -1, reasons, errors);

  const bar1 = reasons.pick(raw.bar1, raw.rc, 'bar1', errors);
  if (bar1 !== null) {
    device.bar1 = {
      totalBytes: checkedBytes(bar1.total, errors, 'bar1.totalBytes'),
      usedBytes: checkedBytes(bar1.used, errors, 'bar1.usedBytes'),
      freeBytes: checkedBytes(bar1.free, errors, 'bar1.freeBytes'),
    };
  }
  const utilization = reasons.pick(raw.utilization, raw.rc, 'utilization', errors);
  if (utilization !== null) {
    device.utilization = {
      gpuPercent: checkedInteger(utilization.gpu, errors, 'utilization.gpuPercent', 100),
      memoryPercent: checkedInteger(utilization.memory, errors, 'utilization.memoryPercent', 100),
    };
  }

  const migMode = reasons.pick(raw.migMode, raw.rc, 'migMode', errors, 'mig');
  const migEnabled = migMode?.current === 1;
  if (migMode !== null) {
    device.mig = {
      enabled: migEnabled,
      pendingEnabled: migMode.pending === null ? null : migMode.pending === 1,
      devices: (raw.migDevices ?? []).map((mig) => buildMigDevice(mig, context, reasons)),
    };
    if (migEnabled && (raw.rc.maxMigDevices ?? -1) !== 0) {
      errors['mig.devices'] = reasons.of('maxMigDevices', raw.rc.maxMigDevices ?? -1);
    }
  }
  device.processes = mergeProcessRows(raw.processRows, raw.processLists, reasons.processSymbols, errors);

  const ordinal = cudaOrdinalOf(
    { uuid: device.uuid, pci: device.pci, migEnabled },
    context.cuda,
    context.cudaDevices,
  );
  device.cudaOrdinal = ordinal.ordinal;
  if (ordinal.error !== null) errors.cudaOrdinal = ordinal.error;
  return device;
}

export function buildSample(raw: RawSample, context: SampleContext): Sample {
  const reasons = new Reasons(context);
  const errors: FieldErrors = {};
  const sample: Sample = {
    schemaVersion: SAMPLE_SCHEMA_VERSION,
    takenAt: new Date(raw.startedAtMs).toISOString(),
    durationMs: raw.durationMs,
    driver: {
      version: reasons.pick(raw.driverVersion, raw.rc, 'driverVersion', errors, 'driver.version'),
      nvmlVersion: reasons.pick(raw.nvmlVersion, raw.rc, 'nvmlVersion', errors, 'driver.nvmlVersion'),
      cudaDriverVersion: reasons.pick(raw.cudaDriverVersion, raw.rc, 'cudaDriverVersion', errors, 'driver.cudaDriverVersion'),
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
