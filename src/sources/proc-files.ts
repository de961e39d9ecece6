/**
 * Parsers for the /proc files the host layer reads: status (RSS split, NSpid, uids), smaps (the
 * RSS of the NVIDIA driver's device mappings), cgroup (container id) and stat (start time).
 * Pure functions over the files' text, so they are tested with fixtures of any kernel's format.
 */

export interface StatusFigures {
  rssBytes: number | null;
  anonBytes: number | null;
  fileBytes: number | null;
  shmemBytes: number | null;
  /** The pid in each PID namespace, outermost first (the last is the pid inside the container). */
  nspid: number[] | null;
}

/**
 * A figure in kB as bytes; null when the digits make no whole number of bytes below 2^53 (no
 * kernel has that much memory, but lxcfs and other /proc emulations have printed 2^64 - 1).
 */
export function kibToBytes(digits: string): number | null {
  const bytes = Number(digits) * 1024;
  return Number.isSafeInteger(bytes) ? bytes : null;
}

/** "VmRSS:	  1740 kB" -> bytes; null when the line is missing (kernels before 4.5 lack Rss*). */
function kilobytes(text: string, key: string): number | null {
  const match = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
  return match === null ? null : kibToBytes(match[1]!);
}

// "NSpid:\t4242\t17". Whitespace and digits are kept apart: with `\s+([\d\s]+)$` both could take
// the same blanks, and a long run of them not ending the line backtracked quadratically.
const NSPID = /^NSpid:[ \t]+(\d+(?:[ \t]+\d+)*)[ \t]*$/m;

export function parseStatus(text: string): StatusFigures {
  const nspid = NSPID.exec(text)?.[1]!.split(/[ \t]+/).map(Number) ?? null;
  return {
    rssBytes: kilobytes(text, 'VmRSS'),
    anonBytes: kilobytes(text, 'RssAnon'),
    fileBytes: kilobytes(text, 'RssFile'),
    shmemBytes: kilobytes(text, 'RssShmem'),
    nspid: nspid !== null && nspid.every(Number.isSafeInteger) ? nspid : null,
  };
}

// "Uid:\t1000\t1000\t1000\t1000": real, effective, saved set and file-system uid.
const UID = /^Uid:[ \t]+(\d+)[ \t]+(\d+)[ \t]+(\d+)[ \t]+(\d+)[ \t]*$/m;

/**
 * The users whose files the process writes as its own: its effective and file-system uids (the
 * owner of a file it creates is its fs uid, which follows the effective one unless set apart).
 * null when the line is missing or malformed: then nobody can vouch for a file as the process's.
 */
export function parseStatusWriterUids(text: string): number[] | null {
  const match = UID.exec(text);
  if (match === null) return null;
  const uids = [Number(match[2]), Number(match[4])];
  return uids.every((uid) => Number.isSafeInteger(uid) && uid <= 0xffffffff) ? [...new Set(uids)] : null;
}

/**
 * Resident bytes of the mappings of /dev/nvidia* (control, device and UVM files); null when a
 * figure is too large to be true.
 */
export function parseSmapsDriverRss(text: string): number | null {
  let total = 0;
  let inDriverMapping = false;
  for (const line of text.split('\n')) {
    // A mapping header: "start-end perms offset dev inode [path]"; the key lines that follow are
    // "Name:   value kB".
    if (/^[0-9a-f]+-[0-9a-f]+ /.test(line)) {
      const path = line.split(/\s+/)[5] ?? '';
      inDriverMapping = path.startsWith('/dev/nvidia');
    } else if (inDriverMapping && line.startsWith('Rss:')) {
      total += kibToBytes(/(\d+)/.exec(line)?.[1] ?? '0') ?? Infinity;
    }
  }
  return Number.isSafeInteger(total) ? total : null;
}

/**
 * The container id in a cgroup path: the 64-hex id Docker, containerd (Kubernetes), CRI-O and
 * Podman put in their scope names (docker-<id>.scope, cri-containerd-<id>.scope, crio-<id>,
 * libpod-<id>, /docker/<id>, /kubepods/.../<id>). null when the process is in no container.
 */
export function parseCgroupContainerId(text: string): string | null {
  const ids = text.match(/[0-9a-f]{64}/g);
  return ids === null ? null : ids[ids.length - 1]!;
}

/**
 * The Kubernetes pod UID in a cgroup path: kubepods-burstable-pod<uid>.slice (systemd driver,
 * underscores for dashes) or /kubepods/burstable/pod<uid>/ (cgroupfs driver). null outside a pod.
 */
export function parseCgroupPodUid(text: string): string | null {
  const match = /pod([0-9a-f]{8}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{4}[-_][0-9a-f]{12})/.exec(text);
  return match === null ? null : match[1]!.replace(/_/g, '-');
}

/** Field 22 of /proc/<pid>/stat: start time in clock ticks since boot (pid reuse check). */
export function parseStatStartTime(text: string): number | null {
  // The command (field 2) is in parentheses and may itself contain spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const value = Number(fields[22 - 3]);
  return Number.isSafeInteger(value) ? value : null;
}
