/**
 * The lines under a process in `gpu-layers probe`: its device memory as one stacked bar (live
 * tensors, CUDA graph pools, cached blocks, outside the allocator), the gaps in words a person
 * acts on, vLLM's view, and the host split. Figures that are unknown are said to be, with why.
 */
import type { LayeredProcess, RequestLoad } from '../../layers/schema.js';
import { formatBytes } from '../../format-bytes.js';
import type { Style } from './style.js';

const BAR_WIDTH = 30;

function bar(parts: { bytes: number; glyph: string; paint: (s: string) => string }[], total: number): string {
  // Cells from the running sum, so rounding never leaves a gap or overflows the bar.
  let sum = 0;
  let drawn = 0;
  let out = '';
  for (const part of parts) {
    sum += Math.max(0, part.bytes);
    const upTo = Math.min(BAR_WIDTH, Math.round((sum / total) * BAR_WIDTH));
    out += part.paint(part.glyph.repeat(Math.max(0, upTo - drawn)));
    drawn = Math.max(drawn, upTo);
  }
  return `[${out}${' '.repeat(BAR_WIDTH - drawn)}]`;
}

function percent(ratio: number): string {
  return `${(ratio * 100).toFixed(ratio < 0.1 ? 1 : 0)}%`;
}

/** The stacked bar and its legend, when the allocator layer is known. */
function stackLine(process: LayeredProcess, style: Style): string | null {
  const { driverBytes, allocator } = process.layers;
  if (driverBytes === null || driverBytes === 0 || allocator === null || allocator.reservedBytes === null || allocator.allocatedBytes === null) return null;
  const pools = allocator.privatePoolBytes ?? 0;
  const cached = Math.max(0, allocator.reservedBytes - allocator.allocatedBytes - pools);
  const outside = Math.max(0, driverBytes - allocator.reservedBytes);
  const parts = [
    { bytes: allocator.allocatedBytes, glyph: '█', paint: style.used, label: 'tensors' },
    { bytes: pools, glyph: '▓', paint: style.reserved, label: 'graph pools' },
    { bytes: cached, glyph: '▒', paint: (s: string) => s, label: 'cached' },
    { bytes: outside, glyph: '░', paint: style.warn, label: 'outside allocator' },
  ];
  const legend = parts
    .filter((p) => p.bytes > 0 || p.label === 'tensors')
    .map((p) => `${p.glyph} ${p.label} ${formatBytes(p.bytes)}`)
    .join('  ');
  return `${bar(parts, Math.max(driverBytes, allocator.reservedBytes))} ${legend}`;
}

function gapSentences(process: LayeredProcess): string[] {
  const { gaps, layers } = process;
  const lines: string[] = [];
  const outside = gaps.outsideAllocatorBytes;
  if (outside !== null && outside >= 0) {
    if (layers.contextBytes !== null) {
      const rest = outside - layers.contextBytes;
      lines.push(
        rest > 0
          ? `${formatBytes(outside)} outside the PyTorch allocator, of which ~${formatBytes(layers.contextBytes)} is the CUDA context; the rest (${formatBytes(rest)}) is likely CUDA graphs and NCCL.`
          : `${formatBytes(outside)} outside the PyTorch allocator: about the CUDA context (${formatBytes(layers.contextBytes)}).`,
      );
    } else {
      lines.push(`${formatBytes(outside)} outside the PyTorch allocator (CUDA context, CUDA graphs, NCCL; \`gpu-layers calibrate\` splits out the context).`);
    }
  } else if (outside !== null) {
    lines.push(`The allocator reports ${formatBytes(-outside)} more than the driver: the companion's figures are older than NVML's.`);
  }
  if (gaps.cudaGraphs.insideAllocatorBytes !== null && gaps.cudaGraphs.insideAllocatorBytes > 0) {
    lines.push(`${formatBytes(gaps.cudaGraphs.insideAllocatorBytes)} of the allocator is held by CUDA graph (private) pools.`);
  }
  if (gaps.allocatorCachedBytes !== null && gaps.allocatorCachedBytes > 0) {
    const trapped = gaps.fragmentationRatio !== null ? `; ${percent(gaps.fragmentationRatio)} of reserved is free but trapped in split blocks` : '';
    lines.push(`${formatBytes(gaps.allocatorCachedBytes)} cached free in the allocator${trapped}.`);
  }
  const retries = layers.allocator?.numAllocRetries ?? 0;
  if (retries > 0) lines.push(`${retries} cudaMalloc retries: the allocator had to flush its cache to allocate (fragmentation or pressure).`);
  const ooms = layers.allocator?.numOoms ?? 0;
  if (ooms > 0) lines.push(`${ooms} out-of-memory errors in this process.`);
  return lines;
}

function frameworkLine(process: LayeredProcess): string | null {
  const framework = process.layers.framework;
  if (framework === null) return null;
  const parts: string[] = [];
  if (framework.weightsBytes !== null) parts.push(`weights ${formatBytes(framework.weightsBytes)}`);
  if (framework.kvCacheBytes !== null) {
    const usage = framework.kvCacheUsage !== null ? ` (${percent(framework.kvCacheUsage)} in use)` : '';
    parts.push(`KV cache ${formatBytes(framework.kvCacheBytes)}${usage}`);
  } else if (framework.kvCacheUsage !== null) {
    parts.push(`KV cache ${percent(framework.kvCacheUsage)} in use`);
  }
  if (framework.cudaGraphBytes !== null) parts.push(`graph capture took ${formatBytes(framework.cudaGraphBytes)}`);
  if (framework.requestsRunning !== null) parts.push(`${framework.requestsRunning} running / ${framework.requestsWaiting ?? '?'} waiting`);
  const load = loadText(framework.load);
  if (load !== null) parts.push(load);
  // A command-line match is a guess worth saying; a listening socket or a pid tag is not.
  const label = framework.matchedBy === 'command-line' ? 'vLLM (matched by command line)' : 'vLLM';
  return `${label}: ${parts.length > 0 ? parts.join(', ') : 'no figures (see --json errors)'}`;
}

const rate = (v: number): string => (v >= 100 ? Math.round(v).toLocaleString('en-US') : v.toFixed(1));

/** "decode, 1.2 prompt / 540 generated tok/s, last prefill 3 s ago" */
export function loadText(load: RequestLoad | null): string | null {
  if (load === null) return null;
  const parts: string[] = [];
  if (load.phase !== null) parts.push(load.phase);
  if (load.promptTokensPerSecond !== null && load.generationTokensPerSecond !== null) {
    parts.push(`${rate(load.promptTokensPerSecond)} prompt / ${rate(load.generationTokensPerSecond)} generated tok/s`);
  }
  if (load.sinceLastPrefillSeconds !== null) parts.push(`last prefill ${formatDuration(load.sinceLastPrefillSeconds)} ago`);
  return parts.length === 0 ? null : parts.join(', ');
}

function formatDuration(seconds: number): string {
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 7200) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

/** "malloc 2.1 GiB in use, 180 MiB free; 700 MiB anonymous outside malloc" or why malloc is unknown. */
function mallocLine(host: NonNullable<LayeredProcess['host']>): string | null {
  const malloc = host.malloc;
  if (malloc === null) return null;
  const outside = host.outsideMallocBytes !== null && host.outsideMallocBytes > 0 ? `; ${formatBytes(host.outsideMallocBytes)} anonymous outside malloc` : '';
  return `malloc ${formatBytes(malloc.inUseBytes)} in use, ${formatBytes(malloc.freeBytes)} free in its arenas${outside}`;
}

function containerLine(container: NonNullable<LayeredProcess['host']>['container']): string | null {
  if (container === null || container.usageBytes === null) return null;
  const limit = container.limitBytes === null ? 'no limit' : `limit ${formatBytes(container.limitBytes)}`;
  const workingSet = container.workingSetBytes === null ? '' : `, working set ${formatBytes(container.workingSetBytes)}`;
  const kills = container.oomKills !== null && container.oomKills > 0 ? `, ${container.oomKills} OOM kill(s)` : '';
  return `cgroup ${formatBytes(container.usageBytes)}${workingSet} (${limit})${kills}`;
}

function hostLine(process: LayeredProcess): string | null {
  const host = process.host;
  if (host === null || host.rssBytes === null) return null;
  const split = [
    ['anon', host.anonBytes],
    ['file', host.fileBytes],
    ['shmem', host.shmemBytes],
    ['driver-mapped', host.driverMappedBytes],
  ]
    .filter(([, v]) => v !== null)
    .map(([k, v]) => `${k} ${formatBytes(v as number)}`)
    .join(', ');
  const container = host.containerId !== null ? `  container ${host.containerId.slice(0, 12)}` : '';
  const layers = [mallocLine(host), containerLine(host.container)].filter((l) => l !== null);
  return `host RSS ${formatBytes(host.rssBytes)} (${split})${container}${layers.length > 0 ? `; ${layers.join('; ')}` : ''}`;
}

export function layerLines(process: LayeredProcess, indent: string, style: Style): string[] {
  const lines: string[] = [];
  const stack = stackLine(process, style);
  if (stack !== null) {
    lines.push(`${indent}${stack}`);
  } else {
    const why = process.errors?.['layers.allocator'];
    lines.push(style.dim(`${indent}allocator: n/a${why !== undefined ? ` (${why.message})` : ''}`));
  }
  for (const sentence of gapSentences(process)) lines.push(`${indent}${sentence}`);
  const framework = frameworkLine(process);
  if (framework !== null) lines.push(`${indent}${framework}`);
  // The KV blocks' alignment only when it is worth a flag (`gpu-layers doctor` says it either way).
  const alignment = process.layers.framework?.kvBlockAlignment;
  if (alignment?.worthFixing === true && alignment.advice !== null) lines.push(`${indent}KV block alignment: ${alignment.advice}`);
  const host = hostLine(process);
  if (host !== null) lines.push(style.dim(`${indent}${host}`));
  return lines;
}
