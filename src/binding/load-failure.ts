/**
 * Why the addon did not load, and what fixes it, in the user's terms: Node started with
 * --no-addons, no build at all, a platform or C library the prebuild is not for (musl, another
 * architecture), a glibc or libstdc++ older than the binary needs, a damaged file. dlopen's own
 * words are kept in the message but rarely say it plainly: another architecture's file is
 * "cannot open shared object file: No such file or directory", so the ELF header is read too.
 * explainLoadFailure() is pure; loadFailureFacts() gathers what it needs, on the failure path only.
 */
import { closeSync, openSync, readSync } from 'node:fs';

export interface LoadFailureFacts {
  /** The file that was loaded, or null when no build exists at all. */
  file: string | null;
  /** Where builds were looked for (when `file` is null). */
  tried: readonly string[];
  /** What require() threw (null when nothing was found to load). */
  error: { code?: string | undefined; message: string } | null;
  platform: string;
  arch: string;
  /** glibc's version at run time, null on musl (or where Node cannot tell). */
  glibc: string | null;
  /** The file's ELF header: null when it is not an ELF file; absent when not read. */
  elf?: { bits: 32 | 64; arch: string } | null;
}

export interface LoadFailure {
  cause: string;
  hints: string[];
}

const BUILD_FROM_SOURCE = 'build it on this machine: `npm rebuild gpu-layers --build-from-source` (needs python3, make and a C++17 compiler)';
const INSTALL_SCRIPT = 'if npm skipped the install script (allowScripts), approve it first: `npm install-scripts approve gpu-layers`';

/** e_machine values (ELF gABI) for the architectures Node runs on, by Node's arch name. */
const ELF_MACHINES: ReadonlyMap<number, string> = new Map([
  [0x03, 'ia32'],
  [0x28, 'arm'],
  [0x3e, 'x64'],
  [0xb7, 'arm64'],
  [0x15, 'ppc64'],
  [0x16, 's390x'],
  [0xf3, 'riscv64'],
]);

export function explainLoadFailure(facts: LoadFailureFacts): LoadFailure {
  const system = `${facts.platform}-${facts.arch}${facts.platform === 'linux' ? (facts.glibc === null ? ' (musl)' : ` (glibc ${facts.glibc})`) : ''}`;
  const error = facts.error;
  if (error?.code === 'ERR_DLOPEN_DISABLED') {
    return {
      cause: 'Node.js runs with --no-addons (on its command line or in NODE_OPTIONS), which forbids native addons, and gpu-layers reads NVML through one',
      hints: ['run gpu-layers without --no-addons (check NODE_OPTIONS)'],
    };
  }
  if (facts.file === null) {
    if (facts.platform !== 'linux') return { cause: `gpu-layers reads NVML through a Linux addon; this is ${system}`, hints: ['run it on the Linux GPU host, or in a container there'] };
    if (facts.glibc === null) {
      return { cause: `no build for ${system}: the prebuilt addon is for glibc (Debian, Ubuntu, RHEL), not musl (Alpine)`, hints: [BUILD_FROM_SOURCE, 'or run it in a glibc-based image'] };
    }
    if (facts.arch !== 'x64') return { cause: `no build for ${system}: the package ships a prebuilt addon for linux-x64 only`, hints: [BUILD_FROM_SOURCE] };
    return { cause: `no build at all: none of ${facts.tried.join(', ')} exists`, hints: ['build it: `npm rebuild gpu-layers`', INSTALL_SCRIPT] };
  }
  const message = error?.message ?? 'unknown error';
  if (error?.code === 'MODULE_NOT_FOUND') return { cause: `there is no file ${facts.file} (named by GPU_LAYERS_ADDON or addonPath)`, hints: ['point GPU_LAYERS_ADDON at the built gpu_layers.node, or unset it'] };
  if (facts.elf === null) return { cause: `${facts.file} is not a shared library (damaged or cut short): ${message}`, hints: ['reinstall gpu-layers', BUILD_FROM_SOURCE] };
  if (facts.elf !== undefined && (facts.elf.arch !== facts.arch || facts.elf.bits !== (facts.arch === 'ia32' || facts.arch === 'arm' ? 32 : 64))) {
    return {
      cause: `${facts.file} is built for ${facts.elf.arch} (${facts.elf.bits}-bit), but this Node.js is ${system}`,
      hints: ['install gpu-layers on this machine rather than copying node_modules from another', BUILD_FROM_SOURCE],
    };
  }
  const glibcNeeded = /GLIBC_(\d+\.\d+(?:\.\d+)?)' not found/.exec(message)?.[1];
  if (glibcNeeded !== undefined) {
    return { cause: `${facts.file} needs glibc ${glibcNeeded} or newer; this system has ${facts.glibc === null ? 'musl' : `glibc ${facts.glibc}`}`, hints: [BUILD_FROM_SOURCE] };
  }
  const cxxNeeded = /((?:GLIBCXX|CXXABI)_[\d.]+)' not found/.exec(message)?.[1];
  if (cxxNeeded !== undefined) {
    return { cause: `${facts.file} needs a newer C++ runtime (libstdc++ with ${cxxNeeded}) than this system has`, hints: [BUILD_FROM_SOURCE, 'or install a newer libstdc++6'] };
  }
  if (facts.glibc === null && facts.platform === 'linux') {
    return { cause: `${facts.file} is built for glibc, but this system uses musl (Alpine): ${message}`, hints: [BUILD_FROM_SOURCE, 'or run it in a glibc-based image'] };
  }
  return { cause: message, hints: ['rebuild it: `npm rebuild gpu-layers`', INSTALL_SCRIPT] };
}

/** The ELF class and machine of `file`; null when it is not ELF; undefined when unreadable. */
export function readElfHeader(file: string): LoadFailureFacts['elf'] {
  const header = Buffer.alloc(20);
  let fd: number;
  try {
    fd = openSync(file, 'r');
  } catch {
    return undefined;
  }
  try {
    const n = readSync(fd, header, 0, header.length, 0);
    if (n < 20 || header.readUInt32BE(0) !== 0x7f454c46) return null;
    const littleEndian = header[5] === 1;
    const machine = littleEndian ? header.readUInt16LE(18) : header.readUInt16BE(18);
    return { bits: header[4] === 2 ? 64 : 32, arch: ELF_MACHINES.get(machine) ?? `machine 0x${machine.toString(16)}` };
  } finally {
    closeSync(fd);
  }
}

/** glibc's version from Node's own report (absent on musl). Slow-ish: failure paths only. */
function runtimeGlibc(): string | null {
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return header?.glibcVersionRuntime ?? null;
}

export function loadFailureFacts(file: string | null, tried: readonly string[], error: unknown): LoadFailureFacts {
  const e = error as { code?: string; message?: string } | null;
  return {
    file,
    tried,
    error: e === null ? null : { code: e.code, message: e.message ?? String(error) },
    platform: process.platform,
    arch: process.arch,
    glibc: process.platform === 'linux' ? runtimeGlibc() : null,
    ...(file !== null && e?.code !== 'ERR_DLOPEN_DISABLED' && e?.code !== 'MODULE_NOT_FOUND' ? { elf: readElfHeader(file) } : {}),
  };
}
