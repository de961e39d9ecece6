/**
 * What `gpu-layers watch` shows: on a terminal, a frame of the latest sample (per device, per
 * process the stacked layer bar and a sparkline of each gap over the history), the findings and a
 * status line; when piped, one plain line per sample for grep and awk.
 */
import type { Finding, Severity } from '../../diagnosis/finding-schema.js';
import type { LayeredDevice, LayeredProcess, LayeredSample } from '../../layers/schema.js';
import { formatBytes, formatChange, formatSignedBytes } from '../../format-bytes.js';
import { subjectText } from './findings-text.js';
import { layerLines, loadText } from './layer-lines.js';
import { podLabel } from './pod-label.js';
import { sparkline } from './sparkline.js';
import type { Style } from './style.js';

export interface WatchFrameOptions {
  style: Style;
  /** Terminal columns; no line of the frame is wider. */
  width: number;
  /** The diagnosis of the window so far; an empty list says "no findings", undefined shows no block. */
  findings?: readonly Finding[];
  /** A line for the bottom, e.g. why the last sample failed; plain text, shown as a warning. */
  status?: string;
  /** The sampling interval, for the title. */
  intervalMs?: number;
}

interface Series {
  label: string;
  value: (process: LayeredProcess) => number | null;
}

const SERIES: readonly Series[] = [
  { label: 'outside allocator', value: (p) => p.gaps.outsideAllocatorBytes },
  { label: 'CUDA graphs (est.)', value: (p) => p.gaps.cudaGraphs.totalEstimateBytes },
  { label: 'allocator cached', value: (p) => p.gaps.allocatorCachedBytes },
  { label: 'driver', value: (p) => p.layers.driverBytes },
];

const PROCESS_INDENT = '  ';
const DETAIL_INDENT = '    ';
const LABEL_WIDTH = Math.max(...SERIES.map((s) => s.label.length));
/** Room for "-1023.9 GiB", the widest signed figure. */
const FIGURE_WIDTH = 11;
const SERIES_FIXED_WIDTH = DETAIL_INDENT.length + LABEL_WIDTH + 1 + 1 + FIGURE_WIDTH + 1 + FIGURE_WIDTH;

const SEVERITY_RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/** A process on a device (or a MIG device of it), as one row of the frame. */
interface Placed {
  key: string;
  process: LayeredProcess;
}

interface ProcessGroup {
  /** null for the full GPU; the slot for a MIG device. */
  migSlot: number | null;
  processes: LayeredProcess[] | null;
}

function deviceKey(device: LayeredDevice): string {
  return device.uuid ?? `index:${device.index}`;
}

function processKey(device: LayeredDevice, migSlot: number | null, pid: number): string {
  return `${deviceKey(device)}/${migSlot ?? '-'}/${pid}`;
}

function groups(device: LayeredDevice): ProcessGroup[] {
  const list: ProcessGroup[] = [{ migSlot: null, processes: device.processes }];
  if (device.mig?.enabled === true) {
    for (const mig of device.mig.devices) list.push({ migSlot: mig.slot, processes: mig.processes });
  }
  return list;
}

function processIndex(sample: LayeredSample): Map<string, LayeredProcess> {
  const index = new Map<string, LayeredProcess>();
  for (const device of sample.devices) {
    for (const group of groups(device)) {
      for (const p of group.processes ?? []) index.set(processKey(device, group.migSlot, p.pid), p);
    }
  }
  return index;
}

/** Columns a code point takes in a terminal: East Asian wide and emoji 2, combining marks 0, else 1. */
function columns(codePoint: number): number {
  if ((codePoint >= 0x300 && codePoint <= 0x36f) || (codePoint >= 0x200b && codePoint <= 0x200f) || (codePoint >= 0xfe00 && codePoint <= 0xfe0f)) return 0;
  if (
    (codePoint >= 0x1100 && codePoint <= 0x115f) ||
    (codePoint >= 0x2e80 && codePoint <= 0xa4cf) ||
    (codePoint >= 0xac00 && codePoint <= 0xd7a3) ||
    (codePoint >= 0xf900 && codePoint <= 0xfaff) ||
    (codePoint >= 0xfe30 && codePoint <= 0xfe4f) ||
    (codePoint >= 0xff00 && codePoint <= 0xff60) ||
    (codePoint >= 0xffe0 && codePoint <= 0xffe6) ||
    (codePoint >= 0x1f300 && codePoint <= 0x1faff) ||
    (codePoint >= 0x20000 && codePoint <= 0x3fffd)
  ) {
    return 2;
  }
  return 1;
}

// Only SGR sequences reach here: Style makes them, and text from outside goes through `clean`.
const SGR = /\u001b\[[0-9;]*m/y;

/** The line cut to `width` display columns, with "…" where it was cut. */
function fit(line: string, width: number): string {
  const plain = line.replace(new RegExp(SGR.source, 'g'), '');
  let total = 0;
  for (const ch of plain) total += columns(ch.codePointAt(0)!);
  if (total <= width) return line;
  if (width <= 0) return '';
  let out = '';
  let used = 0;
  let styled = false;
  for (let i = 0; i < line.length; ) {
    SGR.lastIndex = i;
    const escape = SGR.exec(line);
    if (escape !== null) {
      out += escape[0];
      styled = true;
      i += escape[0].length;
      continue;
    }
    const ch = String.fromCodePoint(line.codePointAt(i)!);
    const w = columns(ch.codePointAt(0)!);
    if (used + w > width - 1) break;
    out += ch;
    used += w;
    i += ch.length;
  }
  // A cut inside a styled run would leave the terminal in that style for the next line.
  return out + '…' + (styled ? '\u001b[0m' : '');
}

/** Text from the process table or the diagnosis on one line, without control characters a terminal would act on. */
function clean(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
}


function change(values: readonly (number | null)[]): number | null {
  const known = values.filter((v): v is number => v !== null);
  if (known.length < 2) return null;
  return known.at(-1)! - known[0]!;
}

function changeText(delta: number | null): string {
  if (delta === null) return '';
  if (delta === 0) return '±0 B';
  return formatChange(delta);
}

function duration(ms: number): string {
  if (ms < 10_000 && ms % 1000 !== 0) return `${ms < 1000 ? ms : (ms / 1000).toFixed(1)}${ms < 1000 ? 'ms' : 's'}`;
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m ${seconds % 60}s`;
  return `${Math.floor(minutes / 60)}h ${minutes % 60}m`;
}

function titleLine(history: readonly LayeredSample[], shown: readonly LayeredSample[], options: WatchFrameOptions): string {
  const last = history.at(-1)!;
  const parts = [options.style.bold('gpu-layers watch'), last.takenAt, `${history.length} sample${history.length === 1 ? '' : 's'}`];
  if (options.intervalMs !== undefined) parts.push(`every ${duration(options.intervalMs)}`);
  const span = Date.parse(last.takenAt) - Date.parse(shown[0]!.takenAt);
  if (shown.length > 1 && Number.isFinite(span)) parts.push(`graphs: last ${shown.length} over ${duration(span)}`);
  return parts.join('  ');
}

function deviceLine(device: LayeredDevice, style: Style): string {
  const { usedBytes, totalBytes } = device.memory;
  let line = `${style.bold(`GPU ${device.index}`)}  ${clean(device.name ?? 'n/a')}  ${formatBytes(usedBytes)} / ${formatBytes(totalBytes)} used`;
  const unattributed = device.unattributedBytes;
  if (unattributed !== null && unattributed > 0) line += `  (${formatBytes(unattributed)} by no listed process)`;
  const why = device.errors.device ?? device.errors.memory;
  if (why !== undefined) line += `  ${style.warn(`n/a: ${clean(why.message)}`)}`;
  return line;
}

/** False for a reused pid: both start times known and different. */
function sameProcess(a: LayeredProcess, b: LayeredProcess): boolean {
  const ticksA = a.host?.startTimeTicks ?? null;
  const ticksB = b.host?.startTimeTicks ?? null;
  return ticksA === null || ticksB === null || ticksA === ticksB;
}

function seriesLine(series: Series, placed: Placed, shown: readonly Map<string, LayeredProcess>[], style: Style): string {
  const values = shown.map((index) => {
    const p = index.get(placed.key);
    return p === undefined || !sameProcess(p, placed.process) ? null : series.value(p);
  });
  const delta = change(values);
  const deltaText = changeText(delta).padStart(FIGURE_WIDTH);
  return [
    DETAIL_INDENT + series.label.padEnd(LABEL_WIDTH),
    // Padded to the samples drawn, so a series that starts late still ends at the newest column.
    style.used(sparkline(values, shown.length).padStart(shown.length)),
    formatSignedBytes(series.value(placed.process)).padStart(FIGURE_WIDTH),
    delta !== null && delta > 0 ? style.warn(deltaText) : deltaText,
  ].join(' ');
}

function processLines(placed: Placed, shown: readonly Map<string, LayeredProcess>[], style: Style): string[] {
  const { process } = placed;
  const command = process.command === undefined || process.command === null ? style.dim('(command not visible)') : clean(process.command);
  return [
    `${PROCESS_INDENT}${style.bold(`pid ${process.pid}`)}  ${formatBytes(process.usedBytes)}  ${podLabel(process)?.concat('  ') ?? ''}${command}`,
    // The first of the probe's lines under a process is its stacked bar (or why there is none).
    layerLines(process, DETAIL_INDENT, style)[0]!,
    ...loadLines(process, style),
    ...SERIES.map((series) => seriesLine(series, placed, shown, style)),
  ];
}

/** The engine's phase and token rates, where vLLM's counters (or its stats log) give them. */
function loadLines(process: LayeredProcess, style: Style): string[] {
  const text = loadText(process.layers.framework?.load ?? null);
  return text === null ? [] : [`${DETAIL_INDENT}${style.dim('load')} ${text}`];
}

function groupLines(device: LayeredDevice, group: ProcessGroup, shown: readonly Map<string, LayeredProcess>[], style: Style): string[] {
  const lines = group.migSlot === null ? [] : [`${PROCESS_INDENT}${style.bold(`MIG ${group.migSlot}`)}`];
  if (group.processes === null) return [...lines, style.dim(`${PROCESS_INDENT}processes: n/a`)];
  if (group.processes.length === 0) return [...lines, style.dim(`${PROCESS_INDENT}no processes`)];
  // By pid, not by size: rows that trade places on every sample are unreadable live.
  const sorted = [...group.processes].sort((a, b) => a.pid - b.pid);
  for (const process of sorted) {
    lines.push(...processLines({ key: processKey(device, group.migSlot, process.pid), process }, shown, style));
  }
  return lines;
}


function findingLines(findings: readonly Finding[], style: Style): string[] {
  if (findings.length === 0) return [style.dim('no findings')];
  const paint = (severity: Severity, text: string): string =>
    severity === 'critical' ? style.bold(style.warn(text)) : severity === 'warning' ? style.warn(text) : style.dim(text);
  const sorted = [...findings].sort((a, b) => SEVERITY_RANK[a.severity] - SEVERITY_RANK[b.severity]);
  const lines = [style.bold('findings')];
  for (const f of sorted) {
    lines.push(`${PROCESS_INDENT}${paint(f.severity, f.severity.toUpperCase().padEnd(8))} ${f.id}  ${clean(f.title)}  ${style.dim(subjectText(f))}`);
    lines.push(`${DETAIL_INDENT}${clean(f.summary)}`);
  }
  return lines;
}

/** The whole screen for a terminal, newest sample last in `history`; no cursor control (the caller redraws). */
export function renderWatchFrame(history: readonly LayeredSample[], options: WatchFrameOptions): string {
  const { style, width } = options;
  const lines: string[] = [];
  const last = history.at(-1);
  if (last === undefined) {
    lines.push(`${style.bold('gpu-layers watch')}  waiting for the first sample`);
  } else {
    const shownSamples = history.slice(-Math.max(1, width - SERIES_FIXED_WIDTH));
    const shown = shownSamples.map(processIndex);
    lines.push(titleLine(history, shownSamples, options));
    if (last.devices.length === 0) lines.push('', 'no NVIDIA GPU visible to NVML');
    for (const device of last.devices) {
      lines.push('', deviceLine(device, style));
      for (const group of groups(device)) lines.push(...groupLines(device, group, shown, style));
    }
  }
  if (options.findings !== undefined) lines.push('', ...findingLines(options.findings, style));
  if (options.status !== undefined && options.status !== '') lines.push('', style.warn(clean(options.status)));
  return lines.map((line) => fit(line.trimEnd(), width)).join('\n') + '\n';
}

function figure(bytes: number | null | undefined): string {
  return bytes === null || bytes === undefined ? '?' : String(bytes);
}

function processFields(processes: LayeredProcess[] | null): string[] {
  if (processes === null) return ['processes ?'];
  return [...processes]
    .sort((a, b) => a.pid - b.pid)
    .map((p) =>
      [
        `pid ${p.pid}`,
        `driver ${figure(p.layers.driverBytes)}`,
        `outside ${figure(p.gaps.outsideAllocatorBytes)}`,
        `graphs ${figure(p.gaps.cudaGraphs.totalEstimateBytes)}`,
        `cached ${figure(p.gaps.allocatorCachedBytes)}`,
      ].join(' '),
    );
}

/**
 * One sample as one plain line (no newline) for a pipe: figures in bytes, unknown "?", each device
 * opened by `gpu<index>` (a MIG device by `gpu<index>.mig<slot>`), each process by `pid`.
 */
export function renderWatchLine(sample: LayeredSample): string {
  const fields = [sample.takenAt];
  for (const device of sample.devices) {
    fields.push(`gpu${device.index} used ${figure(device.memory.usedBytes)}/${figure(device.memory.totalBytes)}`, ...processFields(device.processes));
    if (device.mig?.enabled !== true) continue;
    for (const mig of device.mig.devices) {
      fields.push(`gpu${device.index}.mig${mig.slot} used ${figure(mig.memory.usedBytes)}/${figure(mig.memory.totalBytes)}`, ...processFields(mig.processes));
    }
  }
  return fields.join(' ');
}
