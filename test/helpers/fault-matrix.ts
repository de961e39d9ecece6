/**
 * What the fault-matrix files share (not a test file itself): the baseline host (two GPUs, one in
 * MIG mode, every process kind), the generic comparison of a faulted sample with the baseline
 * sample of the same scenario, the "every null carries a reason" invariant, a reader of the mock's
 * call trace, and the event-loop delay meter that wraps only the probe's own calls.
 */
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import type { FieldErrors, Sample } from '../../src/sample/schema.js';
import { GiB, MiB, h100 } from './scenarios.js';

// ---------------------------------------------------------------------------------------------
// The host every case starts from

/** Pids are unique per list, so a failed list's processes can be told apart in the merge. */
export function baselineHost(): Scenario {
  const migMemory = { total: 20 * GiB, reserved: 0, used: 3 * GiB, free: 17 * GiB };
  return {
    driverVersion: '550.54.15',
    nvmlVersion: '12.550.54.15',
    cudaDriverVersion: 12040,
    devices: [
      h100(0, [
        { type: 'compute', pid: 1001, usedBytes: 4 * GiB },
        { type: 'graphics', pid: 1002, usedBytes: 12 * MiB },
        { type: 'mps', pid: 1003, usedBytes: 2 * GiB },
      ]),
      h100(1, [], {
        migMode: { current: 1, pending: 1 },
        migDevices: [
          {
            slot: 0,
            gpuInstanceId: 1,
            computeInstanceId: 0,
            uuid: 'MIG-aaaaaaaa-0000-4000-8000-000000000001',
            memory: migMemory,
            processes: [
              { type: 'compute', pid: 2001, usedBytes: 1 * GiB },
              { type: 'graphics', pid: 2002, usedBytes: 8 * MiB },
              { type: 'mps', pid: 2003, usedBytes: 1 * GiB },
            ],
          },
          {
            slot: 2,
            gpuInstanceId: 2,
            computeInstanceId: 0,
            uuid: 'MIG-aaaaaaaa-0000-4000-8000-000000000002',
            memory: migMemory,
            processes: [{ type: 'compute', pid: 2101, usedBytes: 3 * GiB }],
          },
        ],
      }),
    ],
  };
}

// ---------------------------------------------------------------------------------------------
// Walking samples

type Path = readonly (string | number)[];
export interface Difference {
  path: Path;
  before: unknown;
  after: unknown;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every leaf (or array whose length changed) where `b` differs from `a`; `errors` maps skipped. */
export function differences(a: unknown, b: unknown, path: Path = [], out: Difference[] = []): Difference[] {
  if (Object.is(a, b)) return out;
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length) {
    a.forEach((item, i) => differences(item, b[i], [...path, i], out));
    return out;
  }
  if (isObject(a) && isObject(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)])) {
      if (key === 'errors') continue;
      if (path.length === 0 && (key === 'takenAt' || key === 'durationMs')) continue;
      differences(a[key], b[key], [...path, key], out);
    }
    return out;
  }
  out.push({ path, before: a, after: b });
  return out;
}

export function at(root: unknown, path: Path): unknown {
  let node: unknown = root;
  for (const key of path) {
    if (node === null || node === undefined) return undefined;
    node = (node as Record<string | number, unknown>)[key];
  }
  return node;
}

/** The nearest object on `path` (inclusive of the root) that has an `errors` map, and the path left. */
export function owner(root: unknown, path: Path): { errors: FieldErrors; rest: Path; ownerPath: Path } {
  let found = { errors: (root as { errors: FieldErrors }).errors, rest: path, ownerPath: [] as Path };
  let node: unknown = root;
  for (let i = 0; i < path.length; i++) {
    node = (node as Record<string | number, unknown>)?.[path[i]!];
    if (isObject(node) && isObject(node.errors)) found = { errors: node.errors as FieldErrors, rest: path.slice(i + 1), ownerPath: path.slice(0, i + 1) };
  }
  return found;
}

export const dotted = (path: Path): string => path.join('.');

/** Whether one of `errors`' keys gives the reason for the field at `rest`. */
export function reasonFor(errors: FieldErrors, rest: Path): string | null {
  const field = dotted(rest);
  for (const key of Object.keys(errors)) {
    if (key === 'device' || field === key || field.startsWith(`${key}.`) || key.startsWith(`${field}.`)) return key;
  }
  return null;
}

/**
 * Nulls without a reason: every null field of a sample needs an entry in the errors map of the
 * object holding it (or of an object above it that holds that map). Documented exceptions: the
 * symbol table (null = not exported), the CUDA status (its reason is cuda.error), and the MIG
 * instance ids of processes on a GPU with MIG off.
 */
export function unexplainedNulls(sample: Sample): string[] {
  const found: string[] = [];
  const walk = (node: unknown, path: Path): void => {
    if (node === null) {
      if (path[0] === 'library') return;
      if (path[0] === 'cuda') {
        if (path[1] !== 'error' && sample.cuda.error === null) found.push(dotted(path));
        return;
      }
      const last = path[path.length - 1];
      if ((last === 'gpuInstanceId' || last === 'computeInstanceId') && path[2] === 'processes') {
        const device = sample.devices[path[1] as number]!;
        if (device.mig?.enabled !== true) return;
      }
      const { errors, rest } = owner(sample, path);
      if (reasonFor(errors, rest) === null) found.push(dotted(path));
      return;
    }
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...path, i]));
    else if (isObject(node)) for (const [key, value] of Object.entries(node)) if (key !== 'errors') walk(value, [...path, key]);
  };
  walk(sample, []);
  return found;
}

/** Every errors entry of a sample, by the dotted path of its owner and key. */
export function errorEntries(sample: Sample): Map<string, { code: string; nvmlReturn: number | null; message: string }> {
  const out = new Map<string, { code: string; nvmlReturn: number | null; message: string }>();
  const walk = (node: unknown, path: Path): void => {
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...path, i]));
    else if (isObject(node)) {
      for (const [key, value] of Object.entries(node)) {
        if (key === 'errors' && isObject(value)) {
          for (const [field, error] of Object.entries(value)) out.set(dotted([...path, field]), error as never);
        } else walk(value, [...path, key]);
      }
    }
  };
  walk(sample, []);
  return out;
}

/** An empty reading of a slot a driver invented: nulls, zeros, empty strings and lists. */
export function isEmptyValue(value: unknown, key?: string | number): boolean {
  if (key === 'slot' || key === 'errors') return true;
  if (value === null || value === 0 || value === '' || value === false) return true;
  if (Array.isArray(value)) return value.every((item, i) => isEmptyValue(item, i));
  if (isObject(value)) return Object.entries(value).every(([k, v]) => isEmptyValue(v, k));
  return false;
}

// ---------------------------------------------------------------------------------------------
// The mock's call trace, read incrementally

export class TraceReader {
  #offset = 0;

  constructor(private readonly file: string) {}

  /** Skips what is there now. */
  mark(): void {
    try {
      this.#offset = statSync(this.file).size;
    } catch {
      this.#offset = 0;
    }
  }

  /** The "<symbol> <rc>" lines written since the last mark() or read(). */
  read(): string[] {
    let size: number;
    try {
      size = statSync(this.file).size;
    } catch {
      return [];
    }
    if (size <= this.#offset) return [];
    const buffer = Buffer.alloc(size - this.#offset);
    const fd = openSync(this.file, 'r');
    try {
      readSync(fd, buffer, 0, buffer.length, this.#offset);
    } finally {
      closeSync(fd);
    }
    this.#offset = size;
    return buffer.toString('utf8').split('\n').filter((line) => line !== '');
  }
}

export const symbolsOf = (lines: readonly string[]): Set<string> => new Set(lines.map((line) => line.split(' ')[0]!));

// ---------------------------------------------------------------------------------------------
// The event loop's delay around the probe's own calls

const tick = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export interface LoopDelay {
  name: string;
  /** monitorEventLoopDelay's max while the probe worked. */
  maxMs: number;
  /**
   * The longest stretch of the loop that the process's own CPU time can account for: for every
   * 1 ms tick, the smaller of the time since the previous tick and the CPU time the whole process
   * (every thread) used meanwhile. A block of the main thread's own making shows in full; time the
   * process spent waiting for a core (this machine's are shared) does not.
   */
  ownMs: number;
}

/** Both figures bound a block of the main thread's own making; the smaller is the tighter. */
export const ownDelay = (d: LoopDelay): number => Math.min(d.maxMs, d.ownMs);

/**
 * Runs `work` (probe calls only: the caller keeps its own synchronous work, such as writing the
 * scenario, outside) under a fresh monitorEventLoopDelay histogram of 1 ms resolution. The meter
 * ticks once before the work, so that the synchronous start of the first call is measured, and
 * lets the loop turn once after it, so that a block at the very end is recorded too.
 */
export async function measured<T>(name: string, into: LoopDelay[], work: () => Promise<T>): Promise<T> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  let ownMs = 0;
  let lastAt = performance.now();
  let lastCpu = process.cpuUsage();
  const ticker = setInterval(() => {
    const now = performance.now();
    const cpu = process.cpuUsage();
    const usedMs = (cpu.user - lastCpu.user + cpu.system - lastCpu.system) / 1000;
    ownMs = Math.max(ownMs, Math.min(now - lastAt, usedMs));
    lastAt = now;
    lastCpu = cpu;
  }, 1);
  await tick(2);
  try {
    return await work();
  } finally {
    await tick(2);
    clearInterval(ticker);
    histogram.disable();
    into.push({ name, maxMs: histogram.max / 1e6, ownMs });
  }
}

/** Runs one case again, pushing its measurement into `into`. */
export type Remeasure = (into: LoopDelay[]) => Promise<unknown>;

/**
 * The cores of the machines this runs on are shared, so a delay can also be the process waiting
 * for a core, or a one-off pause (a major GC, the sanitizer's allocator), which is not the probe's
 * doing. A block of the probe's own making happens on every run, and cannot outlast the CPU time
 * the process used meanwhile. So each case in `again` (its first run's own delay reached
 * `boundMs`) is measured up to three more times, and its best run replaces its first: the result
 * holds the first run of every other case and the best run of each of these.
 */
export async function settleLoopDelays(first: readonly LoopDelay[], again: ReadonlyMap<string, Remeasure>, boundMs: number): Promise<LoopDelay[]> {
  const settled = first.filter((d) => !again.has(d.name));
  for (const run of again.values()) {
    const runs: LoopDelay[] = [];
    const best = (): LoopDelay => runs.reduce((a, b) => (ownDelay(b) < ownDelay(a) ? b : a));
    for (let i = 0; i < 3 && (runs.length === 0 || ownDelay(best()) >= boundMs); i++) await run(runs);
    settled.push(best());
  }
  return settled;
}

export function worst(delays: readonly LoopDelay[], n = 5, metric: (d: LoopDelay) => number = (d) => d.maxMs): string {
  return [...delays]
    .sort((a, b) => metric(b) - metric(a))
    .slice(0, n)
    .map((d) => `${d.name}: ${d.maxMs.toFixed(1)} ms (own ${d.ownMs.toFixed(1)} ms)`)
    .join('; ');
}

/**
 * The differences from `before` that are not a field gone null (or a list gone shorter) with a
 * reason in the errors map holding it; `skip` leaves paths out (dotted).
 */
export function unreasonedChanges(before: Sample, after: Sample, skip: (path: string) => boolean = () => false): string[] {
  return differences(before, after)
    .filter((d) => !skip(dotted(d.path)))
    .filter((d) => {
      if (d.path[0] === 'cuda') return after.cuda.error === null; // the CUDA status's reason is cuda.error
      const shorter = Array.isArray(d.before) && Array.isArray(d.after) && d.after.length < d.before.length;
      if (d.after !== null && !shorter) return true;
      const { errors, rest } = owner(after, d.path);
      return reasonFor(errors, rest) === null;
    })
    .map((d) => `${dotted(d.path)}: ${JSON.stringify(d.before)?.slice(0, 200)} -> ${JSON.stringify(d.after)?.slice(0, 200)}`);
}

/**
 * Numbers no sample may hold: anything but a safe integer, and (unless the scenario may hold
 * 4294967295 as a real figure) NVML's "not available" in a 32-bit field.
 */
export function hugeNumbers(sample: Sample, options: { allOnes32?: boolean } = {}): string[] {
  const found: string[] = [];
  const walk = (node: unknown, path: Path): void => {
    if (typeof node === 'number') {
      if (path.length === 1 && path[0] === 'durationMs') return;
      if (!Number.isSafeInteger(node) || (options.allOnes32 !== true && node === 0xffffffff)) found.push(`${dotted(path)} = ${node}`);
    } else if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...path, i]));
    else if (isObject(node)) for (const [key, value] of Object.entries(node)) walk(value, [...path, key]);
  };
  walk(sample, []);
  return found;
}
