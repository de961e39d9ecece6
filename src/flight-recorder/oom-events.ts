/**
 * The out-of-memory events between a monitor's consecutive samples, from what the samples say:
 * a GPU process gone while its cgroup's OOM-kill count rose (the kernel's OOM killer: exit 137;
 * the sample's `exits`), or a process whose PyTorch allocator counted a new out-of-memory (its
 * `numOoms` rose, or the companion's last-OOM record changed). Each event names every process on
 * that GPU at that moment: "another process took the memory" is as common as a leak. Stateful
 * only in what it remembers of the previous sample; the judgement is over the two samples.
 */
import { processesOf } from '../layers/device-processes.js';
import type { LayeredDevice, LayeredProcess, LayeredSample } from '../layers/schema.js';

export interface GpuNeighbour {
  pid: number;
  command: string | null;
  driverBytes: number | null;
  allocatorReservedBytes: number | null;
  containerUsageBytes: number | null;
  containerLimitBytes: number | null;
}

export interface OomEvent {
  kind: 'oom-kill' | 'cuda-oom';
  /** The sample in which it was noticed. */
  noticedAt: string;
  deviceIndex: number;
  uuid: string | null;
  pid: number;
  command: string | null;
  /** What happened, in one sentence. */
  detail: string;
  /** Every process on that GPU at the last sample that had it (the victim included). */
  processesOnGpu: GpuNeighbour[];
}

const MiB = 2 ** 20;
const mib = (bytes: number | null | undefined): string => (bytes === null || bytes === undefined ? 'n/a' : `${Math.round(bytes / MiB).toLocaleString('en-US')} MiB`);

function neighbours(device: LayeredDevice | undefined): GpuNeighbour[] {
  if (device === undefined) return [];
  return processesOf(device).map((p) => ({
    pid: p.pid,
    command: p.command ?? null,
    driverBytes: p.layers.driverBytes,
    allocatorReservedBytes: p.layers.allocator?.reservedBytes ?? null,
    containerUsageBytes: p.host?.container?.usageBytes ?? null,
    containerLimitBytes: p.host?.container?.limitBytes ?? null,
  }));
}

const deviceOf = (sample: LayeredSample | null, index: number): LayeredDevice | undefined => sample?.devices.find((d) => d.index === index);

/** What tells one out-of-memory from the next, per process: torch's count and the companion's. */
function oomMark(p: LayeredProcess): { numOoms: number | null; lastOom: number | null } {
  return { numOoms: p.layers.allocator?.numOoms ?? null, lastOom: p.layers.allocator?.lastOom?.count ?? null };
}

export class OomEventDetector {
  #previous: LayeredSample | null = null;
  /** By device/pid/start time. */
  readonly #marks = new Map<string, { numOoms: number | null; lastOom: number | null }>();

  /** The events `sample` shows against the previous one given. */
  next(sample: LayeredSample): OomEvent[] {
    const events: OomEvent[] = [];
    const previous = this.#previous;
    for (const exit of sample.exits ?? []) {
      if (exit.oomKillsBefore === null || exit.oomKillsAfter === null || exit.oomKillsAfter <= exit.oomKillsBefore) continue;
      const device = deviceOf(previous, exit.deviceIndex);
      const last = device === undefined ? undefined : processesOf(device).find((p) => p.pid === exit.pid);
      events.push({
        kind: 'oom-kill',
        noticedAt: sample.takenAt,
        deviceIndex: exit.deviceIndex,
        uuid: exit.uuid,
        pid: exit.pid,
        command: last?.command ?? null,
        detail:
          `pid ${exit.pid} is gone and the OOM-kill count of its cgroup (${exit.oomKillsReadFrom ?? exit.cgroupPath ?? 'unknown'}) rose from ${exit.oomKillsBefore} to ${exit.oomKillsAfter}: ` +
          `the kernel's OOM killer ended it (exit 137); last seen at ${exit.lastSeenAt} holding ${mib(last?.layers.driverBytes)} of GPU ${exit.deviceIndex}.`,
        processesOnGpu: neighbours(device),
      });
    }
    const seen = new Set<string>();
    for (const device of sample.devices) {
      for (const p of processesOf(device)) {
        const key = `${device.index}/${p.pid}/${p.host?.startTimeTicks ?? ''}`;
        seen.add(key);
        const mark = oomMark(p);
        const before = this.#marks.get(key);
        this.#marks.set(key, mark);
        if (before === undefined) continue;
        const rose = (a: number | null, b: number | null) => a !== null && b !== null && b > a;
        if (!rose(before.numOoms, mark.numOoms) && !rose(before.lastOom, mark.lastOom)) continue;
        const oom = p.layers.allocator?.lastOom ?? null;
        const what =
          oom === null
            ? `PyTorch's allocator counted ${(mark.numOoms ?? 0) - (before.numOoms ?? 0)} new out-of-memory error(s) (num_ooms ${before.numOoms} -> ${mark.numOoms})`
            : `a CUDA out-of-memory: a request of ${mib(oom.requestedBytes)} with ${mib(oom.deviceFreeBytes)} free of the device's ${mib(oom.deviceTotalBytes)} (device ${oom.device}, at ${oom.at})` +
              (oom.snapshot !== null ? `; the companion dumped a memory snapshot: ${oom.snapshot}` : '');
        events.push({
          kind: 'cuda-oom',
          noticedAt: sample.takenAt,
          deviceIndex: device.index,
          uuid: device.uuid,
          pid: p.pid,
          command: p.command ?? null,
          detail: `pid ${p.pid}: ${what}; it holds ${mib(p.layers.driverBytes)} of GPU ${device.index}.`,
          processesOnGpu: neighbours(device),
        });
      }
    }
    for (const key of this.#marks.keys()) if (!seen.has(key)) this.#marks.delete(key);
    this.#previous = sample;
    return events;
  }
}
