/**
 * Turns the addon's sample records (typed arrays in the addon's layout) into readings: one object
 * per device and MIG device with its values, null where a call failed, and its return codes.
 * Record counts and lengths are checked first; a transfer that does not add up is refused.
 */
import { GpuLayersError } from '../errors.js';
import type { SampleTransfer } from './raw-schema.js';
import type { RawDevice, RawMemory, RawMigDevice, RawSample } from './sample-reading-schema.js';
import type { Offsets, SampleLayout } from './sample-layout.js';

type ProcessListStatus = { rc: number; rowBytes: number };

function invalid(detail: string): GpuLayersError {
  return new GpuLayersError('NATIVE_OUTPUT_INVALID', `the addon's sample does not add up: ${detail}`, {
    hints: ['this is a bug in gpu-layers; please report it with the driver version'],
  });
}

/** NVML's "not available" crosses as NaN; readings carry it as null. */
function orNull(value: number): number | null {
  return Number.isNaN(value) ? null : value;
}

/** Reads the fields of one record by name. */
class FieldReader {
  constructor(
    private readonly numbers: Float64Array,
    private readonly base: number,
    private readonly at: Offsets<string>,
  ) {}

  get(field: string): number {
    return this.numbers[this.base + this.at[field]!]!;
  }
}

function memory(record: FieldReader): RawMemory {
  const version = record.get('memoryVersion') === 1 ? 1 : 2;
  return {
    version,
    total: orNull(record.get('memoryTotal')),
    reserved: version === 2 ? orNull(record.get('memoryReserved')) : null,
    free: orNull(record.get('memoryFree')),
    used: orNull(record.get('memoryUsed')),
  };
}

/** The fields full GPUs and MIG devices share, and the rc codes they bring. */
function common(record: FieldReader, name: string | null, uuid: string | null, rows: Float64Array, rowWidth: number) {
  const rc = {
    name: record.get('nameRc'),
    uuid: record.get('uuidRc'),
    memory: record.get('memoryRc'),
  };
  const start = record.get('processRowStart');
  const count = record.get('processRowCount');
  if ((start + count) * rowWidth > rows.length) throw invalid(`process rows ${start}+${count} past the end (${rows.length / rowWidth})`);
  const lists: [ProcessListStatus, ProcessListStatus, ProcessListStatus] = [
    { rc: record.get('computeProcessesRc'), rowBytes: record.get('computeRowBytes') },
    { rc: record.get('graphicsProcessesRc'), rowBytes: record.get('graphicsRowBytes') },
    { rc: record.get('mpsProcessesRc'), rowBytes: record.get('mpsRowBytes') },
  ];
  return {
    rc,
    fields: {
      name: rc.name === 0 ? name : null,
      uuid: rc.uuid === 0 ? uuid : null,
      memory: rc.memory === 0 ? memory(record) : null,
      processRows: rows.subarray(start * rowWidth, (start + count) * rowWidth),
      processLists: lists,
    },
  };
}

function checkLength(what: string, numbers: Float64Array, width: number, strings: readonly unknown[] | null, stringWidth: number): number {
  if (width <= 0 || numbers.length % width !== 0) throw invalid(`${what}: ${numbers.length} numbers is not a whole number of ${width}-field records`);
  const records = numbers.length / width;
  if (strings !== null && strings.length !== records * stringWidth) throw invalid(`${what}: ${strings.length} strings for ${records} records`);
  return records;
}

export function decodeSample(transfer: SampleTransfer, layout: SampleLayout): RawSample {
  const { system: sys, deviceStrings, migStrings, processRows } = transfer;
  if (sys.length !== layout.system.width) throw invalid(`system record has ${sys.length} fields, not ${layout.system.width}`);
  if (transfer.systemStrings.length !== layout.systemStrings.width) throw invalid('system strings');
  const deviceCount = checkLength('devices', transfer.devices, layout.device.width, deviceStrings, layout.deviceStrings.width);
  const migCount = checkLength('MIG devices', transfer.migDevices, layout.migDevice.width, migStrings, layout.migStrings.width);
  checkLength('process rows', processRows, layout.processRow.width, null, 0);
  const rowWidth = layout.processRow.width;

  const migsByParent = new Map<number, RawMigDevice[]>();
  for (let m = 0; m < migCount; m++) {
    const record = new FieldReader(transfer.migDevices, m * layout.migDevice.width, layout.migDevice);
    const s = m * layout.migStrings.width;
    const handle = record.get('handleRc');
    const mig: RawMigDevice = { slot: record.get('slot'), rc: { handle } };
    if (handle === 0) {
      const shared = common(record, migStrings[s + layout.migStrings.name]!, migStrings[s + layout.migStrings.uuid]!, processRows, rowWidth);
      const gpuInstanceIdRc = record.get('gpuInstanceIdRc');
      const computeInstanceIdRc = record.get('computeInstanceIdRc');
      Object.assign(mig, shared.fields, {
        rc: { handle, ...shared.rc, gpuInstanceId: gpuInstanceIdRc, computeInstanceId: computeInstanceIdRc },
        gpuInstanceId: gpuInstanceIdRc === 0 ? orNull(record.get('gpuInstanceId')) : null,
        computeInstanceId: computeInstanceIdRc === 0 ? orNull(record.get('computeInstanceId')) : null,
      });
    }
    const parent = record.get('parent');
    if (!(parent >= 0 && parent < deviceCount)) throw invalid(`MIG device ${m} names parent ${parent}`);
    const siblings = migsByParent.get(parent);
    if (siblings === undefined) migsByParent.set(parent, [mig]);
    else siblings.push(mig);
  }

  const devices: RawDevice[] = [];
  for (let d = 0; d < deviceCount; d++) {
    const record = new FieldReader(transfer.devices, d * layout.device.width, layout.device);
    const s = d * layout.deviceStrings.width;
    const handle = record.get('handleRc');
    const device: RawDevice = { index: record.get('index'), rc: { handle } };
    devices.push(device);
    if (handle !== 0) continue;
    const shared = common(record, deviceStrings[s + layout.deviceStrings.name]!, deviceStrings[s + layout.deviceStrings.uuid]!, processRows, rowWidth);
    const rc = {
      handle,
      ...shared.rc,
      pci: record.get('pciRc'),
      bar1: record.get('bar1Rc'),
      utilization: record.get('utilizationRc'),
      migMode: record.get('migModeRc'),
      maxMigDevices: record.get('maxMigDevicesRc'),
    };
    Object.assign(device, shared.fields, {
      rc,
      pci: rc.pci === 0
        ? {
            busId: deviceStrings[s + layout.deviceStrings.busId] ?? '',
            busIdLegacy: deviceStrings[s + layout.deviceStrings.busIdLegacy] ?? '',
            domain: record.get('pciDomain'),
            bus: record.get('pciBus'),
            device: record.get('pciDevice'),
            pciDeviceId: record.get('pciDeviceId'),
            pciSubSystemId: record.get('pciSubSystemId'),
          }
        : null,
      bar1: rc.bar1 === 0 ? { total: orNull(record.get('bar1Total')), free: orNull(record.get('bar1Free')), used: orNull(record.get('bar1Used')) } : null,
      utilization: rc.utilization === 0 ? { gpu: orNull(record.get('utilizationGpu')), memory: orNull(record.get('utilizationMemory')) } : null,
      migMode: rc.migMode === 0 ? { current: orNull(record.get('migModeCurrent')), pending: orNull(record.get('migModePending')) } : null,
      maxMigDevices: rc.maxMigDevices === 0 ? orNull(record.get('maxMigDevices')) : null,
      migDevices: migsByParent.get(d) ?? [],
    });
  }

  const at = (field: keyof SampleLayout['system'] & string): number => sys[layout.system[field]]!;
  const strings = transfer.systemStrings;
  const rc = {
    driverVersion: at('driverVersionRc'),
    nvmlVersion: at('nvmlVersionRc'),
    cudaDriverVersion: at('cudaDriverVersionRc'),
    deviceCount: at('deviceCountRc'),
  };
  return {
    startedAtMs: at('startedAtMs'),
    durationMs: at('durationMs'),
    driverVersion: rc.driverVersion === 0 ? (strings[layout.systemStrings.driverVersion] ?? null) : null,
    nvmlVersion: rc.nvmlVersion === 0 ? (strings[layout.systemStrings.nvmlVersion] ?? null) : null,
    cudaDriverVersion: rc.cudaDriverVersion === 0 ? at('cudaDriverVersion') : null,
    deviceCount: rc.deviceCount === 0 ? at('deviceCount') : null,
    rc,
    devices,
  };
}
