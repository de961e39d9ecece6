/**
 * `probe --format csv`: one row per GPU process with its main figures, for spreadsheets and
 * `csvkit`/pandas; a header row first, CRLF line ends and quoting as RFC 4180 says. Bytes are
 * whole numbers; a figure that is unknown (a layer not measured) is an empty field.
 */
import type { LayeredSample } from '../../layers/schema.js';

export const PROBE_CSV_COLUMNS = [
  'device_index',
  'device_uuid',
  'pid',
  'command',
  'driver_bytes',
  'allocator_reserved_bytes',
  'allocator_allocated_bytes',
  'outside_allocator_bytes',
  'kv_cache_bytes',
  'host_rss_bytes',
  'malloc_in_use_bytes',
  'container_usage_bytes',
  'container_limit_bytes',
] as const;

type Cell = string | number | null | undefined;

/** A field as RFC 4180 writes it: quoted (quotes doubled) when it holds a comma, a quote, CR or LF. */
export function csvField(value: Cell): string {
  if (value === null || value === undefined) return '';
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

type Process = NonNullable<LayeredSample['devices'][number]['processes']>[number];

function row(deviceIndex: number, uuid: string | null, p: Process): Cell[] {
  return [
    deviceIndex,
    uuid,
    p.pid,
    p.command,
    p.layers.driverBytes,
    p.layers.allocator?.reservedBytes,
    p.layers.allocator?.allocatedBytes,
    p.gaps.outsideAllocatorBytes,
    p.layers.framework?.kvCacheBytes,
    p.host?.rssBytes,
    p.host?.malloc?.inUseBytes,
    p.host?.container?.usageBytes,
    p.host?.container?.limitBytes,
  ];
}

/** Processes on a MIG instance are listed with their GPU's index and the instance's UUID. */
export function renderProbeCsv(sample: LayeredSample): string {
  const rows: Cell[][] = [[...PROBE_CSV_COLUMNS]];
  for (const device of sample.devices) {
    for (const p of device.processes ?? []) rows.push(row(device.index, device.uuid, p));
    for (const mig of device.mig?.devices ?? []) for (const p of mig.processes ?? []) rows.push(row(device.index, mig.uuid, p));
  }
  return rows.map((cells) => cells.map(csvField).join(',')).join('\r\n') + '\r\n';
}
