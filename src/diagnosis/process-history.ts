/**
 * Turns layered samples, one at a time, into one history per process (device + pid + start time,
 * so a reused pid is a new process), from which the rules read their series. A history keeps the
 * figures the rules read (process-figures.ts), not the samples, and at most MAX_POINTS of them:
 * past that it keeps every other point and takes every other new one, so days of samples cost
 * what hours do, and the rules, which judge in time rather than in readings, see the same
 * host sampled less often. Samples come validated (a live window) or as recorded JSON (a
 * streamed recording); a sample that is not one is refused, a figure that is not one is null.
 */
import { figuresOf, type ProcessFigures } from './process-figures.js';

export interface HistoryPoint {
  /** Milliseconds since the epoch. */
  t: number;
  process: ProcessFigures;
  /** The memory of what the process runs on: its MIG slice, else the whole GPU. */
  deviceTotalBytes: number | null;
  deviceFreeBytes: number | null;
}

export interface ProcessHistory {
  deviceIndex: number;
  uuid: string | null;
  pid: number;
  command: string | null;
  points: HistoryPoint[];
  /** When the samples given to the diagnosis begin (a process first seen later started in them). */
  windowStart: number;
  /** The typical time between this history's points (samples, or fewer once it kept every other). */
  intervalMs: number;
  /** Series and shapes already computed for it, by reader (growth.ts): several rules read one. */
  memo: Map<unknown, unknown>;
  /** How it ended, where a monitor saw it go (a sample's `exits`); null while it ran to the end. */
  exit: ProcessEnd | null;
}

/** A process gone between two samples, with its cgroup's OOM-kill count before and after. */
export interface ProcessEnd {
  lastSeenAt: number;
  oomKillsBefore: number | null;
  oomKillsAfter: number | null;
  oomKillsReadFrom: string | null;
}

/** One reading of a series. */
export interface Point {
  t: number;
  v: number;
}

/** A history's point budget: 11 hours at 5 s, 2.8 days at 30 s, 5.7 days at 60 s before any thinning. */
export const MAX_POINTS = 8192;
/** Intervals between samples kept to estimate the typical one (the first this many). */
const INTERVAL_SAMPLES = 512;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const byteOf = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

function memoryOf(memory: unknown): { totalBytes: number | null; freeBytes: number | null } {
  return isObject(memory) ? { totalBytes: byteOf(memory.totalBytes), freeBytes: byteOf(memory.freeBytes) } : { totalBytes: null, freeBytes: null };
}

interface Growing {
  history: ProcessHistory;
  startTime: number | null;
  /** Points offered since the last one kept, and how many to skip between kept ones. */
  skipped: number;
  stride: number;
}

export class HistoryBuilder {
  readonly #all: Growing[] = [];
  readonly #current = new Map<string, Growing>();
  readonly #gaps: number[] = [];
  #windowStart = Infinity;
  #windowEnd = -Infinity;
  #lastT: number | null = null;
  #samples = 0;

  /** Samples taken (refused ones not counted). */
  get samples(): number {
    return this.#samples;
  }

  /** Adds one sample (validated, or as recorded); false when it is not a sample at all. */
  add(sample: unknown): boolean {
    if (!isObject(sample) || typeof sample.takenAt !== 'string' || !Array.isArray(sample.devices)) return false;
    const t = Date.parse(sample.takenAt);
    if (!Number.isFinite(t)) return false;
    this.#samples++;
    this.#windowStart = Math.min(this.#windowStart, t);
    this.#windowEnd = Math.max(this.#windowEnd, t);
    if (this.#lastT !== null && this.#gaps.length < INTERVAL_SAMPLES && t > this.#lastT) this.#gaps.push(t - this.#lastT);
    this.#lastT = t;
    for (const device of sample.devices) {
      if (!isObject(device) || typeof device.index !== 'number' || !Number.isSafeInteger(device.index) || device.index < 0) continue;
      const uuid = typeof device.uuid === 'string' ? device.uuid : null;
      for (const { process, memory } of placed(device)) this.#addPoint(device.index, uuid, t, process, memory);
    }
    if (Array.isArray(sample.exits)) for (const exit of sample.exits) this.#addExit(exit);
    return true;
  }

  /** Marks the history of a process a sample says is gone (by device, pid and start time). */
  #addExit(exit: unknown): void {
    if (!isObject(exit) || typeof exit.pid !== 'number' || typeof exit.deviceIndex !== 'number' || typeof exit.lastSeenAt !== 'string') return;
    const key = `${typeof exit.uuid === 'string' ? exit.uuid : exit.deviceIndex}/${exit.pid}`;
    const entry = this.#current.get(key);
    const ticks = byteOf(exit.startTimeTicks);
    if (entry === undefined || (ticks !== null && entry.startTime !== null && ticks !== entry.startTime)) return;
    const lastSeenAt = Date.parse(exit.lastSeenAt);
    if (!Number.isFinite(lastSeenAt)) return;
    entry.history.exit = {
      lastSeenAt,
      oomKillsBefore: byteOf(exit.oomKillsBefore),
      oomKillsAfter: byteOf(exit.oomKillsAfter),
      oomKillsReadFrom: typeof exit.oomKillsReadFrom === 'string' ? exit.oomKillsReadFrom : null,
    };
  }

  /** The first and last sample times (null before any sample). */
  get span(): { from: number; to: number } | null {
    return this.#samples === 0 ? null : { from: this.#windowStart, to: this.#windowEnd };
  }

  /**
   * The histories, each process once per start time, in the order they first appeared; points in
   * time order (samples may come out of order), one per time.
   */
  histories(): ProcessHistory[] {
    const sorted = [...this.#gaps].sort((a, b) => a - b);
    const interval = sorted.length > 0 ? sorted[sorted.length >> 1]! : 0;
    return this.#all.map(({ history, stride }) => {
      const points = [...history.points].sort((a, b) => a.t - b.t).filter((p, i, all) => i === 0 || p.t !== all[i - 1]!.t);
      return { ...history, points, windowStart: this.#windowStart, intervalMs: interval * stride, memo: new Map() };
    });
  }

  #addPoint(deviceIndex: number, uuid: string | null, t: number, process: ProcessFigures, memory: { totalBytes: number | null; freeBytes: number | null }): void {
    const key = `${uuid ?? deviceIndex}/${process.pid}`;
    const startTime = process.host?.startTimeTicks ?? null;
    let entry = this.#current.get(key);
    // A known start time that differs is a reused pid (a new process); an unknown one continues.
    if (entry === undefined || (startTime !== null && entry.startTime !== null && startTime !== entry.startTime)) {
      entry = { history: { deviceIndex, uuid, pid: process.pid, command: null, points: [], windowStart: 0, intervalMs: 0, memo: new Map(), exit: null }, startTime, skipped: 0, stride: 1 };
      this.#current.set(key, entry);
      this.#all.push(entry);
    }
    entry.startTime ??= startTime;
    entry.history.command = process.command ?? entry.history.command;
    if (++entry.skipped < entry.stride) return;
    entry.skipped = 0;
    const points = entry.history.points;
    points.push({ t, process, deviceTotalBytes: memory.totalBytes, deviceFreeBytes: memory.freeBytes });
    if (points.length >= MAX_POINTS) {
      // Every other point, and always the newest: the window's last reading is the one the rules
      // ask "does it go on" of.
      const newest = points[points.length - 1]!;
      let kept = 0;
      for (let i = 0; i < points.length; i += 2) points[kept++] = points[i]!;
      if (points[kept - 1] !== newest) points[kept++] = newest;
      points.length = kept;
      entry.stride *= 2;
    }
  }
}

/** Each GPU process of a device with the memory of what it runs on: its MIG slice, else the GPU. In MIG mode NVML lists a process under both: it counts once. */
function placed(device: Json): { process: ProcessFigures; memory: { totalBytes: number | null; freeBytes: number | null } }[] {
  const seen = new Set<number>();
  const out: { process: ProcessFigures; memory: { totalBytes: number | null; freeBytes: number | null } }[] = [];
  const take = (list: unknown, memory: { totalBytes: number | null; freeBytes: number | null }) => {
    if (!Array.isArray(list)) return;
    for (const raw of list) {
      const process = figuresOf(raw);
      if (process === null || seen.has(process.pid)) continue;
      seen.add(process.pid);
      out.push({ process, memory });
    }
  };
  const mig = isObject(device.mig) && Array.isArray(device.mig.devices) ? device.mig.devices : [];
  for (const slice of mig) if (isObject(slice)) take(slice.processes, memoryOf(slice.memory));
  take(device.processes, memoryOf(device.memory));
  return out;
}

export function processHistories(samples: Iterable<unknown>): ProcessHistory[] {
  const builder = new HistoryBuilder();
  for (const sample of samples) builder.add(sample);
  return builder.histories();
}

/**
 * Whether the process was idle at a point: its vLLM server had no request running or waiting.
 * null where there are no vLLM figures (the load is unknown).
 */
export function idleAt(point: HistoryPoint): boolean | null {
  const framework = point.process.layers.framework;
  if (framework === null || framework.requestsRunning === null) return null;
  return framework.requestsRunning === 0 && (framework.requestsWaiting ?? 0) === 0;
}
