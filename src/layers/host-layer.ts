/**
 * The host layer of a GPU process: what /proc said of it (sources/process-host.ts), without the
 * uids only the companion check reads, joined with what the companion read inside the process
 * (glibc malloc's statistics, Python's allocator). So the host has layers like the device: RSS
 * (the kernel) >= malloc (the allocator) >= Python objects, and the anonymous memory malloc does
 * not hold at all (anonymous RSS - malloc's arenas and mmapped chunks) is memory no heap profiler
 * sees.
 */
import { sourceError } from '../sample/field-errors.js';
import type { FieldError } from '../sample/schema.js';
import type { CompanionResult } from '../sources/companion.js';
import type { CgroupMemoryReading } from '../sources/cgroup-memory.js';
import type { ProcessHostReading } from '../sources/process-host.js';
import type { ContainerMemory, HostLayer } from './schema.js';

function containerOf(reading: CgroupMemoryReading | null): ContainerMemory | null {
  if (reading === null) return null;
  const { version, ...figures } = reading;
  return { cgroupVersion: version, ...figures };
}

export function hostLayerOf(reading: ProcessHostReading): HostLayer {
  const { writerUids: _writerUids, container, ...layer } = reading;
  return { ...layer, container: containerOf(container), malloc: null, python: null, outsideMallocBytes: null };
}

const NO_STATS_DIR = sourceError('NOT_REQUESTED', 'malloc is read inside the process by the companion: enable it and set GPU_LAYERS_STATS_DIR (see `gpu-layers companion`)');

/**
 * The host layer with the companion's figures for the same process (`companion`: its file's
 * result; null when no stats folder is configured). Where they are unknown, `errors.malloc`
 * says why; the anonymous memory outside malloc needs both the kernel's figure and malloc's.
 */
export function withProcessAllocators(host: HostLayer, companion: CompanionResult | null | undefined): HostLayer {
  const errors = { ...host.errors };
  let malloc: HostLayer['malloc'] = null;
  let python: HostLayer['python'] = null;
  let why: FieldError | null = null;
  if (companion === null || companion === undefined) why = NO_STATS_DIR;
  else if (!companion.ok) why = companion.error;
  else {
    const figures = companion.document.host;
    if (figures === undefined || figures === null) {
      why = sourceError('COMPANION_TOO_OLD', `${companion.file} has no host figures: the companion in this process predates them (update gpu-layers in its image)`);
    } else {
      malloc = figures.malloc;
      python = figures.python;
      if (malloc === null) why = sourceError('MALLOC_UNKNOWN', figures.mallocUnknownBecause ?? 'the companion could not read malloc\'s statistics');
      if (python === null) errors.python = sourceError('NOT_REPORTED', 'the companion did not report Python\'s allocator');
    }
  }
  if (why !== null) {
    errors.malloc = why;
    errors.python ??= why;
  }
  let outsideMallocBytes: number | null = null;
  if (malloc !== null && host.anonBytes !== null) outsideMallocBytes = host.anonBytes - malloc.arenaBytes - malloc.mmappedBytes;
  else errors.outsideMallocBytes = sourceError('INPUT_MISSING', `needs ${[host.anonBytes === null ? 'anonymous RSS' : null, malloc === null ? "malloc's statistics" : null].filter(Boolean).join(' and ')}`);
  return { ...host, malloc, python, outsideMallocBytes, errors };
}
