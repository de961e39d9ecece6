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
  deviceTotalBytes: number | null;
  deviceFreeBytes: number | null;
}

export interface ProcessHistory {
  deviceIndex: number;
  uuid: string | null;
  pid: number;
  command: string | null;
  points: HistoryPoint[];
}

/** One reading of a series. */
export interface Point {
  t: number;
  v: number;
}

export function processHistories(samples: readonly LayeredSample[]): ProcessHistory[] {
  const all: ProcessHistory[] = [];
  // The current history of each device + pid, and the start time it was seen with: a known start
  // time that differs is a reused pid (a new process); an unknown one continues the history.
  const current = new Map<string, { history: ProcessHistory; startTime: number | null }>();
  for (const sample of samples) {
    const t = Date.parse(sample.takenAt);
    if (!Number.isFinite(t)) continue;
    for (const device of sample.devices) {
      for (const process of processesOf(device)) {
        const key = `${device.uuid ?? device.index}/${process.pid}`;
        const startTime = process.host?.startTimeTicks ?? null;
        let entry = current.get(key);
        if (entry === undefined || (startTime !== null && entry.startTime !== null && startTime !== entry.startTime)) {
          entry = { history: { deviceIndex: device.index, uuid: device.uuid, pid: process.pid, command: null, points: [] }, startTime };
          current.set(key, entry);
          all.push(entry.history);
        }
        entry.startTime ??= startTime;
        entry.history.command = process.command ?? entry.history.command;
        entry.history.points.push({ t, process, deviceTotalBytes: device.memory.totalBytes, deviceFreeBytes: device.memory.freeBytes });
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
