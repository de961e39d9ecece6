/**
 * The figures of a PyTorch memory snapshot (frameworks.md §2), accumulated segment by segment
 * and trace entry by trace entry as the reader hands them over, so no segment is kept after it
 * was counted. Checks the shape of what it reads: anything that is not a snapshot's segment,
 * block or trace entry is a SnapshotShapeError naming where. Its work and memory are bounded by
 * the file's size (SnapshotAnalysisLimits), whatever the pickle shares by reference.
 */
import { AllocSizes } from './alloc-sizes.js';
import { isDict } from './pickle-reader.js';
import type { SnapshotDevice } from './snapshot-report-schema.js';

export class SnapshotShapeError extends Error {
  constructor(message: string) {
    super(`not a PyTorch memory snapshot: ${message}`);
    this.name = 'SnapshotShapeError';
  }
}

const SWISS_CHEESE_SEGMENTS = 5;
const TOP_SITES = 10;
/** OOM events listed per device; a ring buffer full of OOMs says enough with these. */
const MAX_OOMS = 1000;
const NO_STACK = '(no stack recorded)';
/** c10::DeviceIndex, PyTorch's device number, is a signed integer of at most 16 bits (c10/core/Device.h). */
const MAX_DEVICE_INDEX = 0x7fff;

export interface SnapshotAnalysisLimits {
  /**
   * Blocks counted over all segments. A pickle may put one segment in the list a million times
   * and one block in its blocks a million times, in 2 MB; counting each reference would take
   * hours. PyTorch writes each block as a dict of its own, more than a byte long, so a snapshot
   * it wrote never has more blocks than bytes: past that, the pickle repeats blocks by reference
   * and is refused (counting each distinct block once instead would silently drop the repeats).
   */
  maxBlocks: number;
  /** Distinct allocation sites (top frames) per device: each is kept until the end for the top ten. */
  maxAllocationSites: number;
  /**
   * Distinct private pools over the snapshot, each listed in the report. A pool holds at least
   * one segment of at least 2 MiB (the caching allocator's smallest), so 2^20 pools are 2 TiB.
   */
  maxPrivatePools: number;
}

export const DEFAULT_ANALYSIS_LIMITS: SnapshotAnalysisLimits = { maxBlocks: Number.MAX_SAFE_INTEGER, maxAllocationSites: 1 << 20, maxPrivatePools: 1 << 20 };

interface PoolFigures {
  poolId: [number, number];
  segmentCount: number;
  reservedBytes: number;
  allocatedBytes: number;
  freeBytes: number;
}

type SwissCheese = SnapshotDevice['swissCheese'][number];

interface DeviceFigures {
  segmentCount: number;
  reservedBytes: number;
  allocatedBytes: number;
  activeBytes: number;
  requestedBytes: number;
  freeBytes: number;
  largestFreeBlockBytes: number;
  largestAllocatableBytes: number;
  pools: Map<string, PoolFigures>;
  expandableCount: number;
  expandableBytes: number;
  swiss: SwissCheese[];
  sites: Map<string, { bytes: number; blocks: number }>;
}

interface TraceFigures {
  /** Every entry handed over, whatever its action. */
  entries: number;
  allocSizes: AllocSizes;
  ooms: SnapshotDevice['ooms'];
}

function newDevice(): DeviceFigures {
  return {
    segmentCount: 0,
    reservedBytes: 0,
    allocatedBytes: 0,
    activeBytes: 0,
    requestedBytes: 0,
    freeBytes: 0,
    largestFreeBlockBytes: 0,
    largestAllocatableBytes: 0,
    pools: new Map(),
    expandableCount: 0,
    expandableBytes: 0,
    swiss: [],
    sites: new Map(),
  };
}

/** A value in an error message: never the value itself when it is a container (it may be huge or cyclic). */
function describe(value: unknown): string {
  if (value === null || value === undefined) return 'missing';
  if (typeof value === 'bigint') return 'an integer too large to be a size';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)}`;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return Array.isArray(value) ? 'a list' : isDict(value) ? 'a dict' : 'bytes';
}

function deviceIndex(value: unknown, what: string): number {
  const device = count(value, what);
  if (device > MAX_DEVICE_INDEX) throw new SnapshotShapeError(`${what} is ${device}: PyTorch numbers devices with a 16-bit integer (c10::DeviceIndex)`);
  return device;
}

function count(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw new SnapshotShapeError(`${what} is ${describe(value)}, not a size`);
  return value;
}

function optionalCount(value: unknown, what: string): number | null {
  return value === undefined || value === null ? null : count(value, what);
}

/** Code point order (as Python compares str), not UTF-16 order: UTF-8 bytes sort the same way. */
function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/** Swiss-cheese order: most free pieces, then most free bytes, then lowest address. */
function cheesier(a: SwissCheese, b: SwissCheese): number {
  return b.freePieces - a.freePieces || b.freeBytes - a.freeBytes || a.address - b.address;
}

/** device_traces holds one list per device, numbered by c10::DeviceIndex. */
export function checkDeviceTraceCount(lists: number): void {
  if (lists > MAX_DEVICE_INDEX + 1) throw new SnapshotShapeError(`device_traces has more than ${MAX_DEVICE_INDEX + 1} lists: PyTorch numbers devices with a 16-bit integer (c10::DeviceIndex)`);
}

export class SnapshotAnalysis {
  readonly #devices = new Map<number, DeviceFigures>();
  readonly #traces = new Map<unknown, TraceFigures>();
  /** A frames list's site, computed once: the same list is shared by many blocks. */
  readonly #siteOf = new WeakMap<object, string>();
  readonly #limits: SnapshotAnalysisLimits;
  #segments = 0;
  #blocks = 0;
  #pools = 0;

  constructor(limits: Partial<SnapshotAnalysisLimits> = {}) {
    this.#limits = { ...DEFAULT_ANALYSIS_LIMITS, ...limits };
  }

  segment(segment: unknown): void {
    const where = `segments[${this.#segments++}]`;
    if (!isDict(segment)) throw new SnapshotShapeError(`${where} is not a dict`);
    const device = deviceIndex(segment.device, `${where}.device`);
    const total = count(segment.total_size, `${where}.total_size`);
    const address = count(segment.address ?? 0, `${where}.address`);
    const blocks = segment.blocks;
    if (!Array.isArray(blocks)) throw new SnapshotShapeError(`${where}.blocks is not a list`);
    this.#blocks += blocks.length;
    if (this.#blocks > this.#limits.maxBlocks) {
      throw new SnapshotShapeError(`${where}: more blocks (${this.#blocks}) than the file has bytes (${this.#limits.maxBlocks}), so the pickle repeats blocks by reference; PyTorch writes each block once`);
    }
    const poolId = this.#poolId(segment.segment_pool_id, where);
    const isDefault = poolId[0] === 0 && poolId[1] === 0;
    const large = segment.segment_type === undefined || segment.segment_type === 'large';

    let figures = this.#devices.get(device);
    if (figures === undefined) this.#devices.set(device, (figures = newDevice()));
    figures.segmentCount++;
    figures.reservedBytes += total;
    if (segment.is_expandable === true) {
      figures.expandableCount++;
      figures.expandableBytes += total;
    }
    let allocated = 0;
    let free = 0;
    let freePieces = 0;
    let largestFree = 0;
    for (let i = 0; i < blocks.length; i++) {
      const block = blocks[i];
      if (!isDict(block)) throw new SnapshotShapeError(`${where}.blocks[${i}] is not a dict`);
      const size = count(block.size, `${where}.blocks[${i}].size`);
      const state = block.state;
      if (state === 'active_allocated') {
        allocated += size;
        figures.activeBytes += size;
        figures.requestedBytes += optionalCount(block.requested_size, `${where}.blocks[${i}].requested_size`) ?? size;
        const site = this.#site(block.frames, `${where}.blocks[${i}].frames`);
        const entry = figures.sites.get(site);
        if (entry === undefined) {
          if (figures.sites.size >= this.#limits.maxAllocationSites) throw new SnapshotShapeError(`device ${device} has more than ${this.#limits.maxAllocationSites} distinct allocation sites`);
          figures.sites.set(site, { bytes: size, blocks: 1 });
        } else {
          entry.bytes += size;
          entry.blocks++;
        }
      } else if (state === 'active_pending_free') {
        figures.activeBytes += size;
      } else if (state === 'inactive') {
        free += size;
        freePieces++;
        if (size > largestFree) largestFree = size;
      } else {
        throw new SnapshotShapeError(`${where}.blocks[${i}].state is ${describe(state)}, not active_allocated, active_pending_free or inactive`);
      }
    }
    figures.allocatedBytes += allocated;
    figures.freeBytes += free;
    if (largestFree > figures.largestFreeBlockBytes) figures.largestFreeBlockBytes = largestFree;
    if (isDefault && large && largestFree > figures.largestAllocatableBytes) figures.largestAllocatableBytes = largestFree;
    if (!isDefault) {
      const key = `${poolId[0]},${poolId[1]}`;
      let pool = figures.pools.get(key);
      if (pool === undefined) {
        if (++this.#pools > this.#limits.maxPrivatePools) throw new SnapshotShapeError(`more than ${this.#limits.maxPrivatePools} private pools, each at least a 2 MiB segment: more memory than any GPUs of one process have`);
        figures.pools.set(key, (pool = { poolId, segmentCount: 0, reservedBytes: 0, allocatedBytes: 0, freeBytes: 0 }));
      }
      pool.segmentCount++;
      pool.reservedBytes += total;
      pool.allocatedBytes += allocated;
      pool.freeBytes += free;
    }
    if (freePieces >= 2) this.#keepSwissCheese(figures.swiss, { address, poolId, totalBytes: total, freeBytes: free, freePieces, largestFreeBlockBytes: largestFree });
  }

  /** Entries of one device's trace list (`list` is the list object: its device is its place). */
  traceEntries(list: unknown, entries: unknown[]): void {
    let figures = this.#traces.get(list);
    if (figures === undefined) this.#traces.set(list, (figures = { entries: 0, allocSizes: new AllocSizes(), ooms: [] }));
    figures.entries += entries.length;
    for (const entry of entries) {
      if (!isDict(entry)) throw new SnapshotShapeError('a device_traces entry is not a dict');
      if (entry.action === 'alloc') figures.allocSizes.add(count(entry.size, 'an alloc trace entry\'s size'));
      else if (entry.action === 'oom' && figures.ooms.length < MAX_OOMS) {
        const time = entry.time_us;
        figures.ooms.push({
          sizeBytes: count(entry.size, 'an oom trace entry\'s size'),
          deviceFreeBytes: optionalCount(entry.device_free, 'an oom trace entry\'s device_free'),
          timeUs: typeof time === 'number' ? time : null,
        });
      }
    }
  }

  /** The per-device figures, once every segment and trace entry was handed over. */
  devices(deviceTraces: unknown): SnapshotDevice[] {
    const traces: (TraceFigures | undefined)[] = [];
    if (deviceTraces !== undefined && deviceTraces !== null) {
      if (!Array.isArray(deviceTraces)) throw new SnapshotShapeError('device_traces is not a list');
      checkDeviceTraceCount(deviceTraces.length);
      deviceTraces.forEach((list, index) => {
        if (!Array.isArray(list)) throw new SnapshotShapeError(`device_traces[${index}] is not a list`);
        // Entries the reader did not hand over (a list it could not stream) are counted now.
        if (list.length > 0) this.traceEntries(list, list.splice(0));
        traces[index] = this.#traces.get(list);
      });
    }
    const indices = new Set(this.#devices.keys());
    traces.forEach((t, index) => {
      if (t !== undefined && t.entries > 0) indices.add(index);
    });
    return [...indices].sort((a, b) => a - b).map((device) => this.#deviceReport(device, this.#devices.get(device) ?? newDevice(), traces[device]));
  }

  #deviceReport(device: number, f: DeviceFigures, t: TraceFigures | undefined): SnapshotDevice {
    const allocSizes = t?.allocSizes ?? new AllocSizes();
    return {
      device,
      segmentCount: f.segmentCount,
      reservedBytes: f.reservedBytes,
      allocatedBytes: f.allocatedBytes,
      activeBytes: f.activeBytes,
      requestedBytes: f.requestedBytes,
      freeBytes: f.freeBytes,
      largestFreeBlockBytes: f.largestFreeBlockBytes,
      fragmentationRatio: f.freeBytes === 0 ? null : 1 - f.largestFreeBlockBytes / f.freeBytes,
      largestAllocatableBytes: f.largestAllocatableBytes,
      privatePools: [...f.pools.values()]
        .sort((a, b) => a.poolId[0] - b.poolId[0] || a.poolId[1] - b.poolId[1])
        .map((p) => ({ poolId: p.poolId, kind: p.poolId[0] !== 0 ? ('cuda-graph' as const) : ('mempool' as const), segmentCount: p.segmentCount, reservedBytes: p.reservedBytes, allocatedBytes: p.allocatedBytes, freeBytes: p.freeBytes })),
      expandableSegments: { segmentCount: f.expandableCount, reservedBytes: f.expandableBytes },
      swissCheese: f.swiss,
      recentRequests: { count: allocSizes.count, largestBytes: allocSizes.largest, overLargestAllocatable: allocSizes.countOver(f.largestAllocatableBytes) },
      ooms: t?.ooms ?? [],
      topAllocationSites: [...f.sites.entries()]
        .map(([site, s]) => ({ site, bytes: s.bytes, blocks: s.blocks }))
        .sort((a, b) => b.bytes - a.bytes || byCodePoint(a.site, b.site))
        .slice(0, TOP_SITES),
    };
  }

  #poolId(value: unknown, where: string): [number, number] {
    if (value === undefined || value === null) return [0, 0];
    if (!Array.isArray(value) || value.length !== 2) throw new SnapshotShapeError(`${where}.segment_pool_id is not a pair`);
    return [count(value[0], `${where}.segment_pool_id[0]`), count(value[1], `${where}.segment_pool_id[1]`)];
  }

  #site(frames: unknown, where: string): string {
    if (frames === undefined || frames === null) return NO_STACK;
    if (!Array.isArray(frames)) throw new SnapshotShapeError(`${where} is not a list`);
    if (frames.length === 0) return NO_STACK;
    const cached = this.#siteOf.get(frames);
    if (cached !== undefined) return cached;
    const frame = frames[0];
    if (!isDict(frame)) throw new SnapshotShapeError(`${where}[0] is not a frame`);
    const part = (value: unknown, key: string): string => {
      if (typeof value === 'string' || typeof value === 'number') return String(value);
      throw new SnapshotShapeError(`${where}[0].${key} is ${describe(value)}`);
    };
    const site = `${part(frame.filename, 'filename')}:${part(frame.line, 'line')} ${part(frame.name, 'name')}`;
    this.#siteOf.set(frames, site);
    return site;
  }

  #keepSwissCheese(kept: SwissCheese[], candidate: SwissCheese): void {
    if (kept.length === SWISS_CHEESE_SEGMENTS && cheesier(candidate, kept[kept.length - 1]!) >= 0) return;
    kept.push(candidate);
    kept.sort(cheesier);
    if (kept.length > SWISS_CHEESE_SEGMENTS) kept.pop();
  }
}
