/**
 * Where each field sits in the addon's sample records. The addon exports its field names
 * (native/sample_layout.h); this module finds every field TypeScript reads by name, once per
 * addon, so a rebuilt addon with moved fields still decodes right and one with missing fields is
 * refused with a clear error instead of being read at the wrong offsets.
 */
import { GpuLayersError } from '../errors.js';
import { validate } from '../validation.js';
import { sampleLayoutSchema } from './raw-schema.js';

const SYSTEM = ['startedAtMs', 'durationMs', 'driverVersionRc', 'nvmlVersionRc', 'cudaDriverVersionRc', 'cudaDriverVersion', 'deviceCountRc', 'deviceCount'] as const;
const COMMON = [
  'handleRc', 'nameRc', 'uuidRc', 'memoryRc', 'memoryVersion', 'memoryTotal', 'memoryReserved', 'memoryFree', 'memoryUsed',
  'computeProcessesRc', 'computeRowBytes', 'graphicsProcessesRc', 'graphicsRowBytes', 'mpsProcessesRc', 'mpsRowBytes',
  'processRowStart', 'processRowCount',
] as const;
const DEVICE = [
  'index', ...COMMON, 'pciRc', 'pciDomain', 'pciBus', 'pciDevice', 'pciDeviceId', 'pciSubSystemId', 'bar1Rc', 'bar1Total',
  'bar1Free', 'bar1Used', 'utilizationRc', 'utilizationGpu', 'utilizationMemory', 'migModeRc', 'migModeCurrent',
  'migModePending', 'maxMigDevicesRc', 'maxMigDevices',
] as const;
const MIG = ['parent', 'slot', ...COMMON, 'gpuInstanceIdRc', 'gpuInstanceId', 'computeInstanceIdRc', 'computeInstanceId'] as const;
/** Process rows are read column by column in this order (process-rows.ts), so it must match. */
export const PROCESS_ROW_COLUMNS = ['kind', 'pid', 'usedGpuMemory', 'gpuInstanceId', 'computeInstanceId'] as const;
const SYSTEM_STRINGS = ['driverVersion', 'nvmlVersion'] as const;
const DEVICE_STRINGS = ['name', 'uuid', 'busId', 'busIdLegacy'] as const;
const MIG_STRINGS = ['name', 'uuid'] as const;

export type Offsets<K extends string> = { readonly [key in K]: number } & { readonly width: number };

export interface SampleLayout {
  system: Offsets<(typeof SYSTEM)[number]>;
  device: Offsets<(typeof DEVICE)[number]>;
  migDevice: Offsets<(typeof MIG)[number]>;
  processRow: Offsets<(typeof PROCESS_ROW_COLUMNS)[number]>;
  systemStrings: Offsets<(typeof SYSTEM_STRINGS)[number]>;
  deviceStrings: Offsets<(typeof DEVICE_STRINGS)[number]>;
  migStrings: Offsets<(typeof MIG_STRINGS)[number]>;
}

function mismatch(detail: string): GpuLayersError {
  return new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', `the addon's sample layout does not match this version of gpu-layers: ${detail}`, {
    hints: ['the addon and the JavaScript are from different builds: rebuild with `npm rebuild gpu-layers`'],
  });
}

function offsets<K extends string>(record: string, names: readonly string[], wanted: readonly K[]): Offsets<K> {
  const out: Record<string, number> = { width: names.length };
  for (const name of wanted) {
    const at = names.indexOf(name);
    if (at < 0) throw mismatch(`no field "${name}" in ${record} records`);
    out[name] = at;
  }
  return out as Offsets<K>;
}

export function readSampleLayout(exported: unknown): SampleLayout {
  const parsed = validate(sampleLayoutSchema, exported);
  if (!parsed.ok) throw mismatch(parsed.message);
  const names = parsed.data;
  if (names.processRow.join() !== PROCESS_ROW_COLUMNS.join()) throw mismatch(`process rows are [${names.processRow.join(', ')}]`);
  return {
    system: offsets('system', names.system, SYSTEM),
    device: offsets('device', names.device, DEVICE),
    migDevice: offsets('MIG device', names.migDevice, MIG),
    processRow: offsets('process row', names.processRow, PROCESS_ROW_COLUMNS),
    systemStrings: offsets('system string', names.systemStrings, SYSTEM_STRINGS),
    deviceStrings: offsets('device string', names.deviceStrings, DEVICE_STRINGS),
    migStrings: offsets('MIG string', names.migStrings, MIG_STRINGS),
  };
}
