/**
 * The figures of a PyTorch memory snapshot (frameworks.md §2), accumulated segment by segment
 * and trace entry by trace entry as the reader hands them over, so no segment is kept after it
 * was counted. Checks the shape of what it reads: anything that is not a snapshot's segment,
 * block or trace entry is a SnapshotShapeError naming where.
 */
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
  allocSizes: number[];
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

export class SnapshotAnalysis {
  readonly #devices = new Map<number, DeviceFigures>();
  readonly #traces = new Map<unknown, TraceFigures>();
  /** A frames list's site, computed once: the same list is shared by many blocks. */
  readonly #siteOf = new WeakMap<object, string>();
  #segments = 0;

  segment(segment: unknown): void {
    const where = `segments[${this.#segments++}]`;
    if (!isDict(segment)) throw new SnapshotShapeError(`${where} is not a dict`);
    const device = count(segment.device, `${where}.device`);
    const total = count(segment.total_size, `${where}.total_size`);
    const address = count(segment.address ?? 0, `${where}.address`);
    const blocks = segment.blocks;
    if (!Array.isArray(blocks)) throw new SnapshotShapeError(`${where}.blocks is not a list`);
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
        if (entry === undefined) figures.sites.set(site, { bytes: size, blocks: 1 });
        else {
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
      if (pool === undefined) figures.pools.set(key, (pool = { poolId, segmentCount: 0, reservedBytes: 0, allocatedBytes: 0, freeBytes: 0 }));
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
    if (figures === undefined) this.#traces.set(list, (figures = { entries: 0, allocSizes: [], ooms: [] }));
    figures.entries += entries.length;
    for (const entry of entries) {
      if (!isDict(entry)) throw new SnapshotShapeError('a device_traces entry is not a dict');
      if (entry.action === 'alloc') figures.allocSizes.push(count(entry.size, 'an alloc trace entry\'s size'));
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
    const allocSizes = t?.allocSizes ?? [];
    let largestRequest = 0;
    let over = 0;
    for (const size of allocSizes) {
      if (size > largestRequest) largestRequest = size;
      if (size > f.largestAllocatableBytes) over++;
    }
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
      recentRequests: { count: allocSizes.length, largestBytes: largestRequest, overLargestAllocatable: over },
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
