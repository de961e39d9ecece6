/**
 * Parsers for the /proc files the host layer reads: status (RSS split, NSpid, uids), smaps (the
 * RSS of the NVIDIA driver's device mappings, the anonymous pages of heap, mappings and stack),
 * cgroup (container id) and stat (start time).
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

export interface SmapsSplit {
  /** Rss of mappings of /dev/nvidia* (existing meaning of driverMappedBytes). */
  driverMappedBytes: number;
  /** Anonymous pages of the brk heap ([heap]): where malloc's main arena lives. */
  heapBytes: number;
  /**
   * Anonymous pages of anonymous mappings other than [heap] and [stack]: unnamed mappings and
   * [anon:NAME] ones (malloc's mmapped chunks and thread arenas, and every mmap outside malloc:
   * pymalloc arenas, NCCL/IB registration caches, JIT code, thread stacks).
   */
  anonMappingsBytes: number;
  /** How many such mappings (all of them, resident or not). */
  anonMappingsCount: number;
  /** Anonymous pages of [stack] (the main thread's; other threads' stacks are unnamed mappings). */
  stackBytes: number;
}

// What a mapping's pathname makes it, for the split.
const OTHER = 0;
const DRIVER = 1;
const HEAP = 2;
const ANON = 3;
const STACK = 4;
type MappingKind = typeof OTHER | typeof DRIVER | typeof HEAP | typeof ANON | typeof STACK;

const CHAR_0 = 0x30;
const CHAR_9 = 0x39;
const CHAR_A = 0x61;
const CHAR_F = 0x66;
const CHAR_SPACE = 0x20;
const CHAR_TAB = 0x09;
const CHAR_DASH = 0x2d;

const isHex = (c: number) => (c >= CHAR_0 && c <= CHAR_9) || (c >= CHAR_A && c <= CHAR_F);
const isBlank = (c: number) => c === CHAR_SPACE || c === CHAR_TAB;

/**
 * The kind of the mapping whose header is text[start, end) ("start-end perms offset dev inode
 * [pathname]"), or null when the line is not a header. The pathname is the rest of the line after
 * the fifth field: it may hold spaces and end with " (deleted)".
 */
function mappingKind(text: string, start: number, end: number): MappingKind | null {
  let i = start;
  while (i < end && isHex(text.charCodeAt(i))) i++;
  if (i === start || i >= end || text.charCodeAt(i) !== CHAR_DASH) return null;
  const second = ++i;
  while (i < end && isHex(text.charCodeAt(i))) i++;
  if (i === second || i >= end || !isBlank(text.charCodeAt(i))) return null;
  // Past the address range: perms, offset, dev and inode, each followed by blanks.
  for (let field = 0; field < 4; field++) {
    while (i < end && isBlank(text.charCodeAt(i))) i++;
    while (i < end && !isBlank(text.charCodeAt(i))) i++;
  }
  while (i < end && isBlank(text.charCodeAt(i))) i++;
  if (i === end) return ANON;
  if (text.startsWith('/dev/nvidia', i)) return DRIVER;
  if (text.startsWith('[anon:', i)) return ANON;
  if (text.startsWith('[heap]', i)) return HEAP;
  // [stack:TID] named other threads' stacks on kernels before 4.5.
  if (text.startsWith('[stack', i)) return STACK;
  return OTHER;
}

/** The kB figure of a "Key:   value kB" line starting at `from` (past the key) as bytes; 0 when it holds no digits, Infinity when too large to be true. */
function lineBytes(text: string, from: number, end: number): number {
  let i = from;
  while (i < end && isBlank(text.charCodeAt(i))) i++;
  const digits = i;
  while (i < end && text.charCodeAt(i) >= CHAR_0 && text.charCodeAt(i) <= CHAR_9) i++;
  if (i === digits) return 0;
  return kibToBytes(text.slice(digits, i)) ?? Infinity;
}

/**
 * The split of a process's resident memory that smaps alone gives: the driver's device mappings
 * (Rss of /dev/nvidia*), and the anonymous pages (each mapping's `Anonymous:`) of the brk heap, of
 * the other anonymous mappings and of the stack. The anonymous pages of file mappings (private
 * copy-on-write pages: a library's written .data, a MAP_PRIVATE file written to) are in none of
 * the buckets, nor are shared anonymous mappings (MAP_SHARED|MAP_ANONYMOUS, shown as
 * "/dev/zero (deleted)": shmem, not Anonymous) or [vdso]-like special mappings. null when a
 * figure is too large to be true. One pass over the text, no regular expression per line: a big
 * process's smaps is tens of MB, read every sample.
 */
export function parseSmapsSplit(text: string): SmapsSplit | null {
  let driver = 0;
  let heap = 0;
  let anon = 0;
  let anonCount = 0;
  let stack = 0;
  let kind: MappingKind = OTHER;
  const length = text.length;
  let start = 0;
  while (start < length) {
    let end = text.indexOf('\n', start);
    if (end === -1) end = length;
    const first = text.charCodeAt(start);
    // Key lines start with a capital ("Rss:", "Anonymous:", "VmFlags:"), headers with a hex digit.
    if (isHex(first)) {
      const header = mappingKind(text, start, end);
      if (header !== null) {
        kind = header;
        if (kind === ANON) anonCount++;
      }
    } else if (kind !== OTHER) {
      if (kind === DRIVER) {
        if (text.startsWith('Rss:', start)) driver += lineBytes(text, start + 4, end);
      } else if (text.startsWith('Anonymous:', start)) {
        const bytes = lineBytes(text, start + 10, end);
        if (kind === HEAP) heap += bytes;
        else if (kind === ANON) anon += bytes;
        else stack += bytes;
      }
    }
    start = end + 1;
  }
  const figures = [driver, heap, anon, stack];
  if (!figures.every(Number.isSafeInteger)) return null;
  return { driverMappedBytes: driver, heapBytes: heap, anonMappingsBytes: anon, anonMappingsCount: anonCount, stackBytes: stack };
}

/**
 * Resident bytes of the mappings of /dev/nvidia* (control, device and UVM files); null when a
 * figure is too large to be true (any figure parseSmapsSplit reads: a file that lies about one
 * mapping is not trusted for the others).
 */
export function parseSmapsDriverRss(text: string): number | null {
  return parseSmapsSplit(text)?.driverMappedBytes ?? null;
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
