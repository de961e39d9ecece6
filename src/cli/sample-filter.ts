/**
 * `-i/--id` and `--pid`, as nvidia-smi's `-i` and nvitop's filters: which GPUs (index or UUID)
 * and which processes a verb shows or records. The monitor still samples everything NVML gives
 * (the exporter's and the flight recorder's view of the host does not change); the layered sample
 * is narrowed after it is taken.
 */
import type { LayeredSample } from '../layers/schema.js';
import { UsageError } from './usage.js';

export const FILTER_FLAGS = {
  id: { type: 'string', short: 'i', multiple: true },
  pid: { type: 'string', multiple: true },
} as const;

interface FilterValues {
  id?: string[];
  pid?: string[];
}

export interface SampleFilter {
  /** NVML indices and UUIDs (lower case) asked for; null: every GPU. */
  indices: ReadonlySet<number> | null;
  uuids: ReadonlySet<string> | null;
  /** Pids asked for; null: every process. */
  pids: ReadonlySet<number> | null;
}

/** "0,2" or "GPU-5d8a..." (repeatable, comma separated) and "1234,5678"; null when neither is given. */
export function sampleFilterFromFlags(flags: FilterValues): SampleFilter | null {
  const items = (values: string[] | undefined): string[] | null =>
    values === undefined ? null : values.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
  const ids = items(flags.id);
  const pidItems = items(flags.pid);
  if (ids === null && pidItems === null) return null;
  let indices: Set<number> | null = null;
  let uuids: Set<string> | null = null;
  if (ids !== null) {
    if (ids.length === 0) throw new UsageError('--id expects GPU indices or UUIDs, comma separated (e.g. -i 0,1 or -i GPU-5d8a...)');
    indices = new Set();
    uuids = new Set();
    for (const id of ids) {
      if (/^\d+$/.test(id)) indices.add(Number(id));
      else if (/^(GPU|MIG)-[0-9a-f-]+$/i.test(id)) uuids.add(id.toLowerCase());
      else throw new UsageError(`--id expects a GPU index (0, 1, ...) or UUID (GPU-...), comma separated, not "${id}"`);
    }
  }
  let pids: Set<number> | null = null;
  if (pidItems !== null) {
    if (pidItems.length === 0) throw new UsageError('--pid expects process ids, comma separated (e.g. --pid 1234,5678)');
    pids = new Set();
    for (const pid of pidItems) {
      if (!/^\d+$/.test(pid) || Number(pid) < 1) throw new UsageError(`--pid expects process ids (whole numbers), comma separated, not "${pid}"`);
      pids.add(Number(pid));
    }
  }
  return { indices, uuids, pids };
}

type Device = LayeredSample['devices'][number];

function deviceSelected(device: Device, filter: SampleFilter): boolean {
  if (filter.indices === null || filter.uuids === null) return true;
  return deviceUuids(device).some((u) => filter.uuids!.has(u)) || filter.indices.has(device.index);
}

/** A GPU's UUID and its MIG instances' (a MIG UUID names the GPU it is on), lower case. */
function deviceUuids(device: Device): string[] {
  return [device.uuid, ...(device.mig?.devices ?? []).map((m) => m.uuid)].filter((u): u is string => u !== null).map((u) => u.toLowerCase());
}

/**
 * The sample with only the GPUs and processes asked for: -i keeps the GPUs named; --pid keeps
 * those processes (MIG instances' too) and the GPUs that hold one of them. Device figures
 * (memory, unattributed bytes) stay those of the whole GPU.
 */
export function filterSample(sample: LayeredSample, filter: SampleFilter | null): LayeredSample {
  if (filter === null) return sample;
  const { pids } = filter;
  const keep = <P extends { pid: number }>(list: P[] | null): P[] | null => (list === null || pids === null ? list : list.filter((p) => pids.has(p.pid)));
  const devices = sample.devices
    .filter((device) => deviceSelected(device, filter))
    .map((device) => ({
      ...device,
      processes: keep(device.processes),
      mig: device.mig === null ? null : { ...device.mig, devices: device.mig.devices.map((m) => ({ ...m, processes: keep(m.processes) })) },
    }))
    .filter((device) => pids === null || (device.processes ?? []).length > 0 || (device.mig?.devices ?? []).some((m) => (m.processes ?? []).length > 0));
  const shown = new Set(devices.map((d) => d.index));
  const exits = sample.exits === undefined || sample.exits === null ? sample.exits : sample.exits.filter((e) => shown.has(e.deviceIndex) && (pids === null || pids.has(e.pid)));
  return { ...sample, devices, ...(exits !== undefined ? { exits } : {}) };
}

/** The -i entries that name no GPU of this sample ("7", "GPU-..."): a typo should not be an empty view. */
export function unmatchedIds(sample: LayeredSample, filter: SampleFilter | null): string[] {
  if (filter === null || filter.indices === null || filter.uuids === null) return [];
  const indices = new Set(sample.devices.map((d) => d.index));
  const uuids = new Set(sample.devices.flatMap(deviceUuids));
  return [...[...filter.indices].filter((i) => !indices.has(i)).map(String), ...[...filter.uuids].filter((u) => !uuids.has(u))];
}

/** The usage error for -i entries that match no GPU, listing the GPUs there are. */
export function checkIdsExist(sample: LayeredSample, filter: SampleFilter | null): void {
  const missing = unmatchedIds(sample, filter);
  if (missing.length === 0) return;
  const there = sample.devices.map((d) => `${d.index} (${d.uuid ?? 'no UUID'})`).join(', ') || 'none';
  throw new UsageError(`--id ${missing.join(',')}: no such GPU here (GPUs: ${there})`);
}
