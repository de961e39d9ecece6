/**
 * Which GPU processes of a monitor's previous sample are gone, and whether the kernel's OOM
 * killer took them. A process counts as gone when /proc no longer shows it (or shows another
 * process under its pid), not when it merely left the GPU. Its cgroup's OOM-kill count at its
 * last sample is compared with the count now; where its own cgroup went with it (a container
 * that ended), the parent's count at that last sample is compared with the parent's now, which
 * on cgroup v2 counts the kills below it. A monitor keeps one tracker; one-shot probes have none.
 */
import type { LayeredSample, ProcessExit } from '../layers/schema.js';
import { processesOf } from '../layers/device-processes.js';
import { parentCgroup, readOomKills } from '../sources/cgroup-oom-kills.js';
import { readProcessIdentity } from '../sources/process-identity.js';
import type { FieldErrors } from '../sample/schema.js';

interface Seen {
  pid: number;
  deviceIndex: number;
  uuid: string | null;
  startTimeTicks: number | null;
  takenAt: string;
  cgroup: { version: 1 | 2; path: string; oomKills: number | null; parentOomKills: number | null } | null;
}

export class ExitTracker {
  readonly #procRoot: string;
  readonly #cgroupRoot: string;
  #previous: Map<string, Seen> | null = null;

  constructor(procRoot: string, cgroupRoot: string) {
    this.#procRoot = procRoot;
    this.#cgroupRoot = cgroupRoot;
  }

  /** The processes gone since the last call's sample (null at the first: nothing to compare). */
  async update(sample: LayeredSample): Promise<ProcessExit[] | null> {
    const current = await this.#seen(sample);
    const previous = this.#previous;
    this.#previous = current;
    if (previous === null) return null;
    const gone = [...previous].filter(([key]) => !current.has(key)).map(([, seen]) => seen);
    const exits = await Promise.all(gone.map((seen) => this.#exitOf(seen)));
    return exits.filter((exit): exit is ProcessExit => exit !== null);
  }

  async #seen(sample: LayeredSample): Promise<Map<string, Seen>> {
    const seen = new Map<string, Seen>();
    // The parents' counts, once per parent cgroup: the processes of one container share it.
    const parents = new Map<string, Promise<number | null>>();
    const parentCount = (version: 1 | 2, path: string): Promise<number | null> => {
      const parent = parentCgroup(path);
      if (version !== 2 || parent === null) return Promise.resolve(null);
      let count = parents.get(parent);
      if (count === undefined) parents.set(parent, (count = readOomKills(2, parent, this.#cgroupRoot).then((r) => ('code' in r ? null : r.count))));
      return count;
    };
    await Promise.all(
      sample.devices.flatMap((device) =>
        processesOf(device).map(async (p) => {
          const container = p.host?.container ?? null;
          seen.set(`${device.index}/${p.pid}`, {
            pid: p.pid,
            deviceIndex: device.index,
            uuid: device.uuid,
            startTimeTicks: p.host?.startTimeTicks ?? null,
            takenAt: sample.takenAt,
            cgroup:
              container === null
                ? null
                : { version: container.cgroupVersion, path: container.path, oomKills: container.oomKills, parentOomKills: await parentCount(container.cgroupVersion, container.path) },
          });
        }),
      ),
    );
    return seen;
  }

  async #exitOf(seen: Seen): Promise<ProcessExit | null> {
    const now = await readProcessIdentity(seen.pid, this.#procRoot);
    // Still there (it only left the GPU), or unknown start times on both sides: not an exit.
    if (now.startTimeTicks !== null && (seen.startTimeTicks === null || now.startTimeTicks === seen.startTimeTicks)) return null;
    const errors: FieldErrors = {};
    const exit: ProcessExit = {
      pid: seen.pid,
      deviceIndex: seen.deviceIndex,
      uuid: seen.uuid,
      startTimeTicks: seen.startTimeTicks,
      lastSeenAt: seen.takenAt,
      cgroupPath: seen.cgroup?.path ?? null,
      oomKillsBefore: null,
      oomKillsAfter: null,
      oomKillsReadFrom: null,
      errors,
    };
    const cgroup = seen.cgroup;
    if (cgroup === null) {
      errors.oomKillsAfter = { code: 'INPUT_MISSING', nvmlReturn: null, message: 'its cgroup was not known at its last sample' };
      return exit;
    }
    const own = await readOomKills(cgroup.version, cgroup.path, this.#cgroupRoot);
    if (!('code' in own)) return { ...exit, oomKillsBefore: cgroup.oomKills, oomKillsAfter: own.count, oomKillsReadFrom: own.path };
    const parent = parentCgroup(cgroup.path);
    if (own.code === 'CGROUP_GONE' && cgroup.parentOomKills !== null && parent !== null) {
      const above = await readOomKills(2, parent, this.#cgroupRoot);
      if (!('code' in above)) return { ...exit, oomKillsBefore: cgroup.parentOomKills, oomKillsAfter: above.count, oomKillsReadFrom: above.path };
      errors.oomKillsAfter = above;
      return exit;
    }
    errors.oomKillsAfter = own;
    return exit;
  }
}
