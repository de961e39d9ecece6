/**
 * The time series a report draws, pulled out of a recording's samples: one track per device
 * (by UUID) and per process on it (device + pid + start time, so a reused pid is a new process),
 * and from those the figures of each chart, one value per sample, null where unknown or where
 * the process was not there. Pure functions over validated samples.
 */
import { processesOf } from '../layers/device-processes.js';
import type { LayeredDevice, LayeredProcess, LayeredSample } from '../layers/schema.js';
import { DASH, LAYER_COLORS, processColor } from './report-palette.js';

export interface Series {
  key: string;
  label: string;
  color: string;
  /** stroke-dasharray for a line ('' = solid). */
  dash: string;
  /** How the figure is derived, for the legend. */
  help: string;
  /** One value per sample of the recording. */
  values: (number | null)[];
}

export interface ProcessTrack {
  /** "0-4242"; "0-4242-2" for the second process to hold pid 4242 on device 0. */
  id: string;
  deviceIndex: number;
  uuid: string | null;
  pid: number;
  startTimeTicks: number | null;
  command: string | null;
  /** One entry per sample: the process as that sample saw it, or null when it was not listed. */
  readings: (LayeredProcess | null)[];
  firstSample: number;
  lastSample: number;
}

export interface DeviceTrack {
  index: number;
  uuid: string | null;
  name: string | null;
  cudaOrdinal: number | null;
  readings: (LayeredDevice | null)[];
  processes: ProcessTrack[];
}

export interface Timeline {
  /** Milliseconds since the epoch, one per sample, ascending. */
  times: number[];
  devices: DeviceTrack[];
}


/** Same process unless both start times are known and differ (a missing host reading leaves it unknown). */
function sameStart(a: number | null, b: number | null): boolean {
  return a === null || b === null || a === b;
}

/** Samples must be in time order (the recording reader sorts them) with a parseable takenAt. */
export function buildTimeline(samples: readonly LayeredSample[]): Timeline {
  const times = samples.map((s) => Date.parse(s.takenAt));
  const devices = new Map<string, DeviceTrack>();
  const processes = new Map<string, ProcessTrack[]>();
  const pidUses = new Map<string, number>();
  samples.forEach((sample, at) => {
    for (const device of sample.devices) {
      const deviceKey = device.uuid ?? `index ${device.index}`;
      let track = devices.get(deviceKey);
      if (track === undefined) {
        track = { index: device.index, uuid: device.uuid, name: null, cudaOrdinal: null, readings: new Array(samples.length).fill(null), processes: [] };
        devices.set(deviceKey, track);
      }
      track.index = device.index;
      track.name = device.name ?? track.name;
      track.cudaOrdinal = device.cudaOrdinal ?? track.cudaOrdinal;
      track.readings[at] = device;
      for (const process of processesOf(device)) {
        const ticks = process.host?.startTimeTicks ?? null;
        const key = `${deviceKey}/${process.pid}`;
        const candidates = processes.get(key) ?? [];
        let found = candidates.findLast((p) => sameStart(p.startTimeTicks, ticks) && p.readings[at] === null);
        if (found === undefined) {
          const uses = (pidUses.get(key) ?? 0) + 1;
          pidUses.set(key, uses);
          found = {
            id: `${device.index}-${process.pid}${uses > 1 ? `-${uses}` : ''}`,
            deviceIndex: device.index,
            uuid: device.uuid,
            pid: process.pid,
            startTimeTicks: ticks,
            command: null,
            readings: new Array(samples.length).fill(null),
            firstSample: at,
            lastSample: at,
          };
          candidates.push(found);
          processes.set(key, candidates);
          track.processes.push(found);
        }
        found.startTimeTicks ??= ticks;
        found.command = process.command ?? found.command;
        found.readings[at] = process;
        found.lastSample = at;
      }
    }
  });
  return { times, devices: [...devices.values()].sort((a, b) => a.index - b.index) };
}

function series(key: string, label: string, color: string, help: string, values: (number | null)[], dash: string = DASH.solid): Series {
  return { key, label, color, dash, help, values };
}

/** A command for a legend: the program and its first arguments, cut to `max` characters. */
function shortCommand(command: string | null, max = 48): string {
  if (command === null || command.trim() === '') return '';
  const flat = command.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function processLabel(track: ProcessTrack, max = 40): string {
  const command = shortCommand(track.command, max);
  return command === '' ? `pid ${track.pid}` : `pid ${track.pid} ${command}`;
}

function driverOf(p: LayeredProcess): number | null {
  return p.layers.driverBytes ?? p.usedBytes;
}

/** Device memory: the processes' driver figures and what no process accounts for, stacked; total and used as lines. */
export function deviceSeries(device: DeviceTrack): { stacked: Series[]; lines: Series[] } {
  const stacked = device.processes.map((p, position) =>
    series(`pid-${p.id}`, processLabel(p), processColor(position), 'NVML usedGpuMemory of this process (the driver layer)', p.readings.map((r) => (r === null ? null : driverOf(r)))),
  );
  stacked.push(
    series(
      'unattributed',
      'unattributed',
      LAYER_COLORS.unattributed,
      'device used minus the processes\' used: memory no listed process accounts for (below zero is drawn as zero)',
      device.readings.map((d) => (d === null || d.unattributedBytes === null ? null : Math.max(0, d.unattributedBytes))),
    ),
  );
  const lines = [
    series('total', 'total', LAYER_COLORS.deviceTotal, 'device memory total (NVML)', device.readings.map((d) => d?.memory.totalBytes ?? null), DASH.dashed),
    series('used', 'used (NVML)', LAYER_COLORS.deviceUsed, 'device memory used (NVML v2: allocated, without the driver\'s reserve)', device.readings.map((d) => d?.memory.usedBytes ?? null), DASH.dotted),
  ];
  return { stacked, lines };
}

interface LayerSplit {
  allocated: number | null;
  privatePools: number | null;
  cached: number | null;
  outside: number | null;
  context: number | null;
  driverOnly: number | null;
}

const NO_SPLIT: LayerSplit = { allocated: null, privatePools: null, cached: null, outside: null, context: null, driverOnly: null };

/**
 * One reading split into stacked layers that add up to the driver figure. Where a part is
 * unknown the layer that contains it keeps it (cached holds the pools when torch does not
 * report them; outside holds the context when it is not calibrated), so the stack never
 * invents a zero; without the allocator layer only the driver figure is drawn.
 */
function splitLayers(p: LayeredProcess | null): LayerSplit {
  if (p === null) return NO_SPLIT;
  const driver = driverOf(p);
  if (driver === null) return NO_SPLIT;
  const allocator = p.layers.allocator;
  if (allocator === null || allocator.reservedBytes === null || allocator.allocatedBytes === null) return { ...NO_SPLIT, driverOnly: driver };
  const pools = allocator.privatePoolBytes;
  const context = p.layers.contextBytes;
  return {
    allocated: allocator.allocatedBytes,
    privatePools: pools,
    cached: Math.max(0, allocator.reservedBytes - allocator.allocatedBytes - (pools ?? 0)),
    outside: Math.max(0, driver - allocator.reservedBytes - (context ?? 0)),
    context,
    driverOnly: null,
  };
}

/** A process's layers stacked bottom to top, and its driver figure as a line over them. */
export function processLayerSeries(track: ProcessTrack): { stacked: Series[]; lines: Series[] } {
  const splits = track.readings.map(splitLayers);
  const pick = (field: keyof LayerSplit) => splits.map((s) => s[field]);
  return {
    stacked: [
      series('allocated', 'allocated (live tensors)', LAYER_COLORS.allocated, 'PyTorch allocator: allocated bytes', pick('allocated')),
      series('private-pools', 'CUDA graph pools', LAYER_COLORS.privatePools, 'PyTorch allocator: private pools (CUDA graph capture)', pick('privatePools')),
      series('allocator-cached', 'allocator cached', LAYER_COLORS.allocatorCached, 'reserved − allocated − private pools: free blocks the allocator keeps', pick('cached')),
      series('outside-allocator', 'outside allocator', LAYER_COLORS.outsideAllocator, 'driver − reserved − context: CUDA graphs, NCCL, other libraries', pick('outside')),
      series('context', 'CUDA context', LAYER_COLORS.context, 'a bare CUDA context on this device (gpu-layers calibrate)', pick('context')),
      series('driver-only', 'driver (no allocator layer)', LAYER_COLORS.driverOnly, 'NVML usedGpuMemory; no companion figures to split it', pick('driverOnly')),
    ],
    lines: [
      series('driver', 'driver total (NVML)', LAYER_COLORS.driverTotal, 'NVML usedGpuMemory of this process', track.readings.map((r) => (r === null ? null : driverOf(r)))),
    ],
  };
}

/** The gaps between the layers, as recorded. */
export function gapSeries(track: ProcessTrack): Series[] {
  const of = (f: (p: LayeredProcess) => number | null) => track.readings.map((r) => (r === null ? null : f(r)));
  return [
    series('gap-outside-allocator', 'outside allocator', LAYER_COLORS.outsideAllocator, 'driver − allocator reserved', of((p) => p.gaps.outsideAllocatorBytes)),
    series('gap-cuda-graphs', 'CUDA graphs (estimate)', LAYER_COLORS.privatePools, 'private pools + (outside allocator − context)', of((p) => p.gaps.cudaGraphs.totalEstimateBytes), DASH.dashed),
    series('gap-allocator-cached', 'allocator cached', LAYER_COLORS.allocatorCached, 'reserved − allocated − private pools', of((p) => p.gaps.allocatorCachedBytes), DASH.dotted),
  ];
}

/** Host memory of the process: the parts of its RSS. */
export function hostSeries(track: ProcessTrack): Series[] {
  const of = (f: (p: NonNullable<LayeredProcess['host']>) => number | null) => track.readings.map((r) => (r === null || r.host === null ? null : f(r.host)));
  return [
    series('host-anon', 'anonymous (heap)', LAYER_COLORS.hostAnon, 'RssAnon: heap and other anonymous memory', of((h) => h.anonBytes)),
    series('host-file', 'file-backed', LAYER_COLORS.hostFile, 'RssFile: mapped files and libraries', of((h) => h.fileBytes), DASH.dashed),
    series('host-shmem', 'shmem', LAYER_COLORS.hostShmem, 'RssShmem: shared memory', of((h) => h.shmemBytes), DASH.dotted),
    series('host-driver-mapped', 'driver-mapped', LAYER_COLORS.hostDriverMapped, 'resident in /dev/nvidia* mappings: pinned memory, UVM', of((h) => h.driverMappedBytes), DASH.dashDot),
    series('host-malloc', 'malloc in use', LAYER_COLORS.hostMalloc, "glibc malloc's memory in use, read inside the process by the companion (what heap profilers see)", of((h) => h.malloc?.inUseBytes ?? null)),
    series('host-outside-malloc', 'anonymous outside malloc', LAYER_COLORS.hostOutsideMalloc, "anonymous RSS − malloc's arenas and mmapped chunks: mmaps no heap profiler sees", of((h) => h.outsideMallocBytes), DASH.dashed),
    series('host-rss', 'RSS', LAYER_COLORS.hostRss, 'resident set size', of((h) => h.rssBytes), DASH.long),
  ];
}
