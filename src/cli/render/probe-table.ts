/**
 * The readable `gpu-layers probe` view of one sample: per device the memory split with a bar
 * (used, reserved, free), utilization and BAR1, its processes (MIG devices under their parent),
 * and what could not be read, with why.
 */
import type { LayeredProcess, LayeredSample, SourceStatus } from '../../layers/schema.js';
import type { Device, DeviceMemory, FieldErrors, GpuProcess, MigDevice, Sample } from '../../sample/schema.js';
import { formatBytes } from '../../format-bytes.js';
import { layerLines } from './layer-lines.js';
import { podLabel } from './pod-label.js';
import type { Style } from './style.js';

export interface TableOptions {
  style: Style;
  /** Terminal width; long command lines are cut to fit. */
  width: number;
  version: string;
}

const BAR_WIDTH = 30;

function memoryBar(memory: DeviceMemory, style: Style): string {
  const { totalBytes, usedBytes, reservedBytes } = memory;
  if (totalBytes === null || totalBytes === 0 || usedBytes === null) return '[' + ' '.repeat(BAR_WIDTH) + ']';
  const cells = (bytes: number): number => Math.round((bytes / totalBytes) * BAR_WIDTH);
  const used = Math.min(BAR_WIDTH, cells(usedBytes));
  const reserved = Math.min(BAR_WIDTH - used, cells(reservedBytes ?? 0));
  const free = BAR_WIDTH - used - reserved;
  return '[' + style.used('█'.repeat(used)) + style.reserved('▒'.repeat(reserved)) + '░'.repeat(free) + ']';
}

function memoryLine(memory: DeviceMemory, style: Style): string {
  const parts = [`${formatBytes(memory.usedBytes)} used`, `${formatBytes(memory.freeBytes)} free`];
  if (memory.reservedBytes !== null || memory.version === 2) parts.push(`${formatBytes(memory.reservedBytes)} reserved`);
  return `${memoryBar(memory, style)} ${parts.join('  ')}  of ${formatBytes(memory.totalBytes)}`;
}

function cudaVersion(encoded: number | null): string {
  if (encoded === null) return 'n/a';
  return `${Math.floor(encoded / 1000)}.${Math.floor((encoded % 1000) / 10)}`;
}

function processType(process: GpuProcess): string {
  const letters = process.types.map((t) => (t === 'compute' ? 'C' : t === 'graphics' ? 'G' : 'M'));
  return letters.join('+');
}

function processLines(processes: GpuProcess[] | null, indent: string, options: TableOptions): string[] {
  if (processes === null) return [`${indent}processes: n/a`];
  if (processes.length === 0) return [`${indent}no processes`];
  const lines = [options.style.dim(`${indent}${'PID'.padStart(8)}  TYPE  ${'GPU MEMORY'.padStart(10)}  COMMAND`)];
  const sorted = [...processes].sort((a, b) => (b.usedBytes ?? -1) - (a.usedBytes ?? -1) || a.pid - b.pid);
  for (const p of sorted) {
    const pod = 'layers' in p ? podLabel(p as LayeredProcess) : null;
    const head = `${indent}${String(p.pid).padStart(8)}  ${processType(p).padEnd(4)}  ${formatBytes(p.usedBytes).padStart(10)}  ${pod === null ? '' : `${pod}  `}`;
    let command = p.command ?? (p.errors?.command !== undefined ? options.style.dim('(not visible here)') : '');
    const room = options.width - head.length;
    if (p.command !== undefined && p.command !== null && command.length > room && room > 8) {
      command = command.slice(0, room - 1) + '…';
    }
    lines.push(head + command);
    // A layered sample (probe with its sources) carries the layers under each process.
    if ('layers' in p) lines.push(...layerLines(p as LayeredProcess, `${indent}${' '.repeat(10)}`, options.style));
  }
  return lines;
}

/** Reasons worth showing: everything but the routine "this GPU has no MIG" and per-process notes. */
function noteLines(errors: FieldErrors, indent: string, style: Style, cudaShownGlobally: boolean): string[] {
  const lines: string[] = [];
  for (const [field, error] of Object.entries(errors)) {
    if (field === 'mig' && error.code === 'NVML_ERROR_NOT_SUPPORTED') continue;
    if (field === 'cudaOrdinal' && cudaShownGlobally && error.code === 'CUDA_UNAVAILABLE') continue;
    // Layer reasons are shown with their process; calibration once in the header.
    if (field === 'contextBytes' || field === 'unattributedBytes') continue;
    lines.push(style.warn(`${indent}n/a ${field}: ${error.message} (${error.code})`));
  }
  return lines;
}

function cudaLabel(ordinal: number | null): string {
  return ordinal === null ? 'cuda:-' : `cuda:${ordinal}`;
}

function migLines(mig: MigDevice, options: TableOptions, cudaShownGlobally: boolean): string[] {
  const { style } = options;
  const ids = `GI ${mig.gpuInstanceId ?? '?'} CI ${mig.computeInstanceId ?? '?'}`;
  return [
    `  ${style.bold(`MIG ${mig.slot}`)}  ${ids}  ${cudaLabel(mig.cudaOrdinal)}  ${mig.name ?? 'n/a'}  ${style.dim(mig.uuid ?? '')}`,
    `    memory ${memoryLine(mig.memory, style)}`,
    ...processLines(mig.processes, '    ', options),
    ...noteLines(mig.errors, '    ', style, cudaShownGlobally),
  ];
}

function deviceLines(device: Device, options: TableOptions, cudaShownGlobally: boolean): string[] {
  const { style } = options;
  const title = `${style.bold(`GPU ${device.index}`)}  ${cudaLabel(device.cudaOrdinal)}  ${device.name ?? 'n/a'}  ${device.pci?.busId ?? ''}`;
  const lines = [title];
  if (device.uuid !== null) lines.push(style.dim(`       ${device.uuid}`));
  if (device.errors.device !== undefined) {
    return [...lines, ...noteLines(device.errors, '  ', style, cudaShownGlobally)];
  }
  lines.push(`  memory ${memoryLine(device.memory, style)}`);
  const busy = device.utilization === null
    ? 'busy n/a'
    : `busy gpu ${device.utilization.gpuPercent ?? 'n/a'}%  memory ${device.utilization.memoryPercent ?? 'n/a'}%`;
  const bar1 = device.bar1 === null ? 'bar1 n/a' : `bar1 ${formatBytes(device.bar1.usedBytes)} of ${formatBytes(device.bar1.totalBytes)}`;
  const mig = device.mig?.enabled === true ? `  MIG on (${device.mig.devices.length} devices)` : '';
  lines.push(`  ${busy}   ${bar1}${mig}`);
  const unattributed = (device as { unattributedBytes?: number | null }).unattributedBytes;
  if (unattributed !== undefined && unattributed !== null && unattributed !== 0) {
    lines.push(`  ${formatBytes(Math.abs(unattributed))} ${unattributed > 0 ? 'used on the device by no listed process' : 'more listed for processes than the device reports used'}`);
  }
  if (device.mig?.enabled === true) {
    lines.push(...processLines(device.processes, '  ', options));
    for (const migDevice of device.mig.devices) lines.push(...migLines(migDevice, options, cudaShownGlobally));
  } else {
    lines.push(...processLines(device.processes, '  ', options));
  }
  lines.push(...noteLines(device.errors, '  ', style, cudaShownGlobally));
  return lines;
}

/** One line per outside source that was asked for, and the calibration hint when it is missing. */
function sourceLines(sources: LayeredSample['sources'], style: Style): string[] {
  const line = (what: string, source: SourceStatus | null): string[] => {
    if (source === null || source.location === null) return [];
    return source.ok ? [style.dim(`${what}: ${source.location}`)] : [style.warn(`${what}: ${source.error?.message ?? 'unavailable'} (${source.error?.code ?? ''})`)];
  };
  return [
    ...line('companion files', sources.companion),
    ...sources.vllmMetrics.flatMap((m) => line('vLLM metrics', m)),
    ...line('vLLM log', sources.vllmLog),
    ...line('model config', sources.hfConfig),
    ...line('kubelet pod-resources', sources.podResources ?? null),
    ...(sources.calibration.ok ? [] : [style.dim('context size unknown: run `gpu-layers calibrate` once per driver')]),
  ];
}

export function renderProbeTable(sample: Sample | LayeredSample, options: TableOptions): string {
  const { style } = options;
  const header = [
    style.bold(`gpu-layers ${options.version}`),
    `driver ${sample.driver.version ?? 'n/a'}`,
    `NVML ${sample.driver.nvmlVersion ?? 'n/a'}`,
    `CUDA ${cudaVersion(sample.driver.cudaDriverVersion)}`,
    style.dim(`${sample.takenAt} (${sample.durationMs.toFixed(2)} ms)`),
  ].join('  ');
  const lines = [header];
  const cudaShownGlobally = !sample.cuda.available;
  if (cudaShownGlobally) {
    lines.push(style.dim(`CUDA driver: ${sample.cuda.error?.message ?? 'unavailable'}; cuda:N ordinals unknown`));
  }
  lines.push(...noteLines(sample.errors, '', style, cudaShownGlobally));
  if ('sources' in sample) lines.push(...sourceLines(sample.sources, style));
  if (sample.devices.length === 0) lines.push('', 'no NVIDIA GPU visible to NVML');
  for (const device of sample.devices) lines.push('', ...deviceLines(device, options, cudaShownGlobally));
  return lines.join('\n') + '\n';
}
