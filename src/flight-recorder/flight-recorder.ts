/**
 * The OOM flight recorder. The 3 AM out-of-memory is diagnosed after the fact, and when the
 * process is gone so is everything that showed why, unless someone was recording. `serve`,
 * `watch` and `record` give every layered sample to one of these: it keeps the recent window as
 * recording lines (bounded in time and bytes), and when a sample shows an out-of-memory
 * (oom-events.ts) it writes that window as a recording, with a `.diagnosis.json` beside it: the
 * event, every process on that GPU then, and the diagnosis of the window. Files are written
 * atomically into a folder of this user's (made 0700; refused when another user could replace
 * files in it), and the oldest flights go once there are more than `maxFlights` or they hold
 * more than `maxBytes`. Nothing here throws at the caller: a flight that cannot be written is a
 * failure in the result, and sampling goes on.
 */
import { lstatSync, mkdirSync, readdirSync, unlinkSync } from 'node:fs';
import path from 'node:path';

import { diagnoseHistories } from '../diagnosis/diagnose.js';
import type { Finding } from '../diagnosis/finding-schema.js';
import { HistoryBuilder } from '../diagnosis/process-history.js';
import type { LayeredSample } from '../layers/schema.js';
import { recordingHeaderFor } from '../recording/recording-header.js';
import { calibrationCacheFile } from '../sources/calibration-cache.js';
import { writeFileAtomic } from '../write-file-atomic.js';
import { OomEventDetector, type OomEvent } from './oom-events.js';

export interface FlightRecorderOptions {
  /** Where flights are written (made 0700 when missing). */
  dir: string;
  /** How far back a flight reaches (default 30 minutes). */
  windowMs?: number;
  /** The window's recorded lines kept in memory, at most (default 32 MiB). */
  maxWindowBytes?: number;
  /** Flights kept on disk, at most (default 20) ... */
  maxFlights?: number;
  /** ... and their bytes, at most (default 256 MiB); the newest flight is always kept. */
  maxBytes?: number;
  /** For the recordings' headers. */
  host: string;
  intervalMs: number;
  gpuLayersVersion: string;
}

/** A figure of the process that rose over the window before its out-of-memory. */
export interface GrewBefore {
  series: string;
  what: string;
  first: number;
  last: number;
}

export interface Flight {
  event: OomEvent;
  /** What of the process rose by FLOOR_BYTES or more over the window, most first. */
  grewBefore: GrewBefore[];
  /** The recording of the window, and the event with its diagnosis beside it. */
  recording: string;
  diagnosis: string;
  findings: Finding[];
}

export interface FlightResult {
  /** Every out-of-memory the sample showed, written or not. */
  events: OomEvent[];
  flights: Flight[];
  /** Flights that could not be written, and why (sampling goes on). */
  failures: string[];
}

const MiB = 2 ** 20;
/** The diagnosis's own floor (THRESHOLDS.floorBytes): less is no change at all. */
const FLOOR_BYTES = 32 * MiB;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const byteOf = (v: unknown): number | null => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null);

/** The figures looked at, by their path in the layered process. */
const WATCHED: [string, string, (p: Json) => unknown][] = [
  ['layers.driverBytes', 'its device memory (NVML)', (p) => (p.layers as Json | undefined)?.driverBytes],
  ['layers.allocator.allocatedBytes', 'live tensors (PyTorch allocated)', (p) => ((p.layers as Json | undefined)?.allocator as Json | null | undefined)?.allocatedBytes],
  ['layers.allocator.reservedBytes', "PyTorch's reserved memory", (p) => ((p.layers as Json | undefined)?.allocator as Json | null | undefined)?.reservedBytes],
  ['layers.allocator.inactiveSplitBytes', 'free memory trapped in split blocks', (p) => ((p.layers as Json | undefined)?.allocator as Json | null | undefined)?.inactiveSplitBytes],
  ['host.rssBytes', 'its resident set', (p) => (p.host as Json | null | undefined)?.rssBytes],
  ['host.malloc.inUseBytes', "malloc's memory in use", (p) => ((p.host as Json | null | undefined)?.malloc as Json | null | undefined)?.inUseBytes],
  ['host.container.workingSetBytes', "its container's working set", (p) => ((p.host as Json | null | undefined)?.container as Json | null | undefined)?.workingSetBytes],
];

/** The first and last reading of each watched figure of `pid` on `deviceIndex` in the window's samples. */
function grewBefore(samples: readonly Json[], deviceIndex: number, pid: number): GrewBefore[] {
  const first = new Map<string, number>();
  const last = new Map<string, number>();
  for (const sample of samples) {
    const devices = Array.isArray(sample.devices) ? sample.devices : [];
    const device = devices.find((d): d is Json => isObject(d) && d.index === deviceIndex);
    const processes = device === undefined ? [] : [...(Array.isArray(device.processes) ? device.processes : []), ...(isObject(device.mig) && Array.isArray(device.mig.devices) ? device.mig.devices.flatMap((m) => (isObject(m) && Array.isArray(m.processes) ? m.processes : [])) : [])];
    const process = processes.find((p): p is Json => isObject(p) && p.pid === pid);
    if (process === undefined) continue;
    for (const [series, , read] of WATCHED) {
      const v = byteOf(read(process));
      if (v === null) continue;
      if (!first.has(series)) first.set(series, v);
      last.set(series, v);
    }
  }
  return WATCHED.flatMap(([series, what]) => {
    const a = first.get(series);
    const b = last.get(series);
    return a !== undefined && b !== undefined && b - a >= FLOOR_BYTES ? [{ series, what, first: a, last: b }] : [];
  }).sort((x, y) => y.last - y.first - (x.last - x.first));
}

const FLIGHT_FILE = /^flight-\d{8}T\d{6}Z-gpu\d+-pid\d+-(?:oom-kill|cuda-oom)(?:-\d+)?\.(?:jsonl|diagnosis\.json)$/;

/** "2026-12-07T03:15:00.123Z" -> "20261207T031500Z": sorts in time order, no characters a shell minds. */
function compactTime(iso: string): string {
  const ms = Date.parse(iso);
  return new Date(Number.isFinite(ms) ? ms : 0).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
}

export class FlightRecorder {
  readonly dir: string;
  readonly #options: Required<Omit<FlightRecorderOptions, 'dir' | 'host' | 'intervalMs' | 'gpuLayersVersion'>> & Pick<FlightRecorderOptions, 'host' | 'intervalMs' | 'gpuLayersVersion'>;
  readonly #detector = new OomEventDetector();
  /** Oldest first: each sample's time, its recording line, and the first sample's driver facts. */
  readonly #lines: { t: number; line: string; sample: Pick<LayeredSample, 'schemaVersion' | 'driver' | 'takenAt'> }[] = [];
  #bytes = 0;
  #folderChecked = false;

  constructor(options: FlightRecorderOptions) {
    this.dir = path.resolve(options.dir);
    this.#options = {
      windowMs: options.windowMs ?? 30 * 60_000,
      maxWindowBytes: options.maxWindowBytes ?? 32 * MiB,
      maxFlights: options.maxFlights ?? 20,
      maxBytes: options.maxBytes ?? 256 * MiB,
      host: options.host,
      intervalMs: options.intervalMs,
      gpuLayersVersion: options.gpuLayersVersion,
    };
  }

  /** Takes the next sample; writes a flight for each out-of-memory it shows. */
  observe(sample: LayeredSample): FlightResult {
    this.#remember(sample);
    const events = this.#detector.next(sample);
    const result: FlightResult = { events, flights: [], failures: [] };
    if (events.length === 0) return result;
    // The window as recorded, parsed once for the diagnosis and for what grew.
    const window = this.#lines.map(({ line }) => JSON.parse(line) as Json);
    let findings: Finding[];
    try {
      const builder = new HistoryBuilder();
      for (const sample of window) builder.add(sample);
      findings = diagnoseHistories(builder.histories());
    } catch (error) {
      findings = [];
      result.failures.push(`the window's diagnosis failed: ${(error as Error).message}`);
    }
    for (const event of events) {
      try {
        result.flights.push(this.#write(event, findings, grewBefore(window, event.deviceIndex, event.pid)));
      } catch (error) {
        result.failures.push(`no flight recording of ${event.kind} of pid ${event.pid} on GPU ${event.deviceIndex}: ${(error as Error).message}`);
      }
    }
    try {
      this.#prune();
    } catch (error) {
      result.failures.push(`old flights in ${this.dir} not removed: ${(error as Error).message}`);
    }
    return result;
  }

  #remember(sample: LayeredSample): void {
    const t = Date.parse(sample.takenAt);
    const line = JSON.stringify(sample);
    this.#lines.push({ t, line, sample: { schemaVersion: sample.schemaVersion, driver: sample.driver, takenAt: sample.takenAt } });
    this.#bytes += line.length;
    const cutoff = t - this.#options.windowMs;
    while (this.#lines.length > 1 && (this.#lines[0]!.t < cutoff || this.#bytes > this.#options.maxWindowBytes)) {
      this.#bytes -= this.#lines.shift()!.line.length;
    }
  }

  /** The folder, made 0700 when missing; refused unless this user's (or root's) and safe from others. */
  #folder(): void {
    if (this.#folderChecked) return;
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const stat = lstatSync(this.dir);
    const uid = process.geteuid?.() ?? 0;
    if (!stat.isDirectory()) throw new Error(`${this.dir} is not a folder`);
    if (stat.uid !== uid && stat.uid !== 0) throw new Error(`${this.dir} belongs to uid ${stat.uid}, another user: flights go only into a folder of this user's`);
    if ((stat.mode & 0o022) !== 0 && (stat.mode & 0o1000) === 0) throw new Error(`${this.dir} can be written by other users and has no sticky bit: chmod go-w it`);
    this.#folderChecked = true;
  }

  #write(event: OomEvent, findings: Finding[], grew: GrewBefore[]): Flight {
    this.#folder();
    const stem = `flight-${compactTime(event.noticedAt)}-gpu${event.deviceIndex}-pid${event.pid}-${event.kind}`;
    // Two events of one kind for one process in one second: the second gets a suffix.
    let name = stem;
    for (let n = 2; this.#exists(`${name}.jsonl`); n++) name = `${stem}-${n}`;
    const recording = path.join(this.dir, `${name}.jsonl`);
    const diagnosis = path.join(this.dir, `${name}.diagnosis.json`);
    const first = this.#lines[0]!;
    const header = recordingHeaderFor(first.sample, { host: this.#options.host, intervalMs: this.#options.intervalMs, startedAt: first.sample.takenAt, gpuLayersVersion: this.#options.gpuLayersVersion });
    writeFileAtomic(recording, `${JSON.stringify(header)}\n${this.#lines.map((l) => l.line).join('\n')}\n`);
    const own = findings.filter((f) => f.subject.deviceIndex === event.deviceIndex && (f.subject.pid === null || f.subject.pid === event.pid));
    writeFileAtomic(
      diagnosis,
      `${JSON.stringify({ format: 'gpu-layers-flight', event, grewBefore: grew, recording: path.basename(recording), window: { from: first.sample.takenAt, to: event.noticedAt, samples: this.#lines.length }, findings, findingsOfTheProcess: own.map((f) => f.id) }, null, 2)}\n`,
    );
    return { event, grewBefore: grew, recording, diagnosis, findings };
  }

  #exists(name: string): boolean {
    try {
      lstatSync(path.join(this.dir, name));
      return true;
    } catch {
      return false;
    }
  }

  /** Removes the oldest flights (both files) past the count or the bytes; only this user's regular files. */
  #prune(): void {
    const uid = process.geteuid?.() ?? 0;
    const flights = new Map<string, { files: string[]; bytes: number }>();
    for (const name of readdirSync(this.dir)) {
      if (!FLIGHT_FILE.test(name)) continue;
      const stat = lstatSync(path.join(this.dir, name));
      if (!stat.isFile() || stat.uid !== uid) continue;
      const key = name.replace(/\.(?:jsonl|diagnosis\.json)$/, '');
      const flight = flights.get(key) ?? { files: [], bytes: 0 };
      flight.files.push(name);
      flight.bytes += stat.size;
      flights.set(key, flight);
    }
    const oldestFirst = [...flights].sort(([a], [b]) => a.localeCompare(b));
    let total = oldestFirst.reduce((sum, [, f]) => sum + f.bytes, 0);
    while (oldestFirst.length > 1 && (oldestFirst.length > this.#options.maxFlights || total > this.#options.maxBytes)) {
      const [, flight] = oldestFirst.shift()!;
      for (const file of flight.files) unlinkSync(path.join(this.dir, file));
      total -= flight.bytes;
    }
  }
}

/** The default folder: `flights` in gpu-layers' cache folder ($GPU_LAYERS_CACHE_DIR, else the XDG cache). */
export function defaultFlightDirectory(env: Record<string, string | undefined>): string {
  return path.join(path.dirname(calibrationCacheFile(env)), 'flights');
}
