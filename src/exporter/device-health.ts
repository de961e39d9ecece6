/**
 * Whether each GPU answers, for gpu_layers_device_up and gpu_layers_device_error_info. A device
 * is down when NVML cannot open it (its handle call failed: GPU_IS_LOST, NO_PERMISSION, ...),
 * when its memory cannot be read, or when it was listed by an earlier collection and is no
 * longer (the device count failed, or it fell off the bus). A lost GPU has no UUID in the
 * sample (NVML cannot be asked for it), so the known identities carry it over: the down series
 * keeps the uuid label the up series had.
 */
import type { FieldError } from '../sample/schema.js';

/** What health needs of a (layered) sample: its devices and the sample's own errors. */
export interface HealthSample {
  devices: readonly { index: number; uuid: string | null; memory: { totalBytes: number | null; usedBytes: number | null }; errors: Readonly<Record<string, FieldError>> }[];
  errors: Readonly<Record<string, FieldError>>;
}

export interface DeviceHealth {
  gpu: string;
  uuid: string;
  up: boolean;
  /** Why it is down (null when up): NVML's return code name and its message. */
  error: { code: string; reason: string } | null;
}

/** A device listed earlier and missing from this sample, with no reason NVML gave. */
export const NOT_LISTED = 'NOT_LISTED';

/**
 * The devices the exporter has seen since it started, by UUID (the NVML index they last had),
 * and each device's health in `sample`. `known` is updated in place.
 */
export function deviceHealth(sample: HealthSample, known: Map<string, number>): DeviceHealth[] {
  const listed = new Set(sample.devices.flatMap((d) => (d.uuid === null ? [] : [d.uuid])));
  const byIndex = new Map<number, string>();
  for (const [uuid, index] of known) if (!listed.has(uuid)) byIndex.set(index, uuid);
  const health: DeviceHealth[] = [];
  const present = new Set<string>();
  for (const device of sample.devices) {
    // A device without a UUID now takes the one last seen at its index (not listed elsewhere).
    const uuid = device.uuid ?? byIndex.get(device.index) ?? '';
    const error = deviceError(device);
    health.push({ gpu: String(device.index), uuid, up: error === null, error });
    if (uuid !== '') {
      present.add(uuid);
      known.set(uuid, device.index);
    }
  }
  const gone = sample.errors.devices;
  for (const [uuid, index] of known) {
    if (present.has(uuid)) continue;
    health.push({
      gpu: String(index),
      uuid,
      up: false,
      error: gone === undefined ? { code: NOT_LISTED, reason: 'listed by an earlier collection, no longer listed by NVML' } : { code: gone.code, reason: `the device count failed: ${gone.message}` },
    });
  }
  return health.sort((a, b) => Number(a.gpu) - Number(b.gpu) || a.uuid.localeCompare(b.uuid));
}

function deviceError(device: HealthSample['devices'][number]): DeviceHealth['error'] {
  const opened = device.errors.device;
  if (opened !== undefined) return { code: opened.code, reason: opened.message };
  if (device.memory.totalBytes !== null && device.memory.usedBytes !== null) return null;
  const why = device.errors.memory ?? device.errors['memory.totalBytes'] ?? device.errors['memory.usedBytes'];
  return why === undefined ? { code: 'NOT_REPORTED', reason: 'its memory could not be read' } : { code: why.code, reason: `its memory could not be read: ${why.message}` };
}
