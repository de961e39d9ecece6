/**
 * Turns a time-ordered list of layered samples into one history per process (device + pid +
 * start time, so a reused pid is a new process), from which the rules read their series: the
 * values of one field over time, unknown readings left out.
 */
import { processesOf } from '../layers/device-processes.js';
import type { LayeredProcess, LayeredSample } from '../layers/schema.js';

export interface HistoryPoint {
  /** Milliseconds since the epoch. */
  t: number;
  process: LayeredProcess;
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
  /** The typical time between samples. */
  intervalMs: number;
}

/** One reading of a series. */
export interface Point {
  t: number;
  v: number;
}

/** The median gap between samples' times (0 with fewer than two). */
function typicalInterval(times: readonly number[]): number {
  if (times.length < 2) return 0;
  const gaps = times.slice(1).map((t, i) => t - times[i]!).sort((a, b) => a - b);
  return gaps[gaps.length >> 1]!;
}

/** Each GPU process of a device with the memory of what it runs on: its MIG slice, else the GPU. */
function placed(device: LayeredSample['devices'][number]): { process: LayeredProcess; memory: { totalBytes: number | null; freeBytes: number | null } }[] {
  const seen = new Set<number>();
  const out: { process: LayeredProcess; memory: { totalBytes: number | null; freeBytes: number | null } }[] = [];
  for (const mig of device.mig?.devices ?? []) {
    for (const process of mig.processes ?? []) {
      if (seen.has(process.pid)) continue;
      seen.add(process.pid);
      out.push({ process, memory: mig.memory });
    }
  }
  for (const process of processesOf(device)) {
    if (seen.has(process.pid)) continue;
    seen.add(process.pid);
    out.push({ process, memory: device.memory });
  }
  return out;
}

export function processHistories(samples: readonly LayeredSample[]): ProcessHistory[] {
  const all: ProcessHistory[] = [];
  const times = samples.map((s) => Date.parse(s.takenAt)).filter(Number.isFinite);
  const windowStart = times.reduce((a, b) => Math.min(a, b), times[0] ?? 0);
  const intervalMs = typicalInterval(times);
  // The current history of each device + pid, and the start time it was seen with: a known start
  // time that differs is a reused pid (a new process); an unknown one continues the history.
  const current = new Map<string, { history: ProcessHistory; startTime: number | null }>();
  for (const sample of samples) {
    const t = Date.parse(sample.takenAt);
    if (!Number.isFinite(t)) continue;
    for (const device of sample.devices) {
      for (const { process, memory } of placed(device)) {
        const key = `${device.uuid ?? device.index}/${process.pid}`;
        const startTime = process.host?.startTimeTicks ?? null;
        let entry = current.get(key);
        if (entry === undefined || (startTime !== null && entry.startTime !== null && startTime !== entry.startTime)) {
          entry = { history: { deviceIndex: device.index, uuid: device.uuid, pid: process.pid, command: null, points: [], windowStart, intervalMs }, startTime };
          current.set(key, entry);
          all.push(entry.history);
        }
        entry.startTime ??= startTime;
        entry.history.command = process.command ?? entry.history.command;
        entry.history.points.push({ t, process, deviceTotalBytes: memory.totalBytes, deviceFreeBytes: memory.freeBytes });
      }
    }
  }
  return all;
}

/** The known values of one field over the history. */
export function seriesOf(history: ProcessHistory, read: (point: HistoryPoint) => number | null | undefined): Point[] {
  const points: Point[] = [];
  for (const point of history.points) {
    const v = read(point);
    if (v !== null && v !== undefined && Number.isFinite(v)) points.push({ t: point.t, v });
  }
  return points;
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
