/**
 * `gpu-layers report FILE --html OUT`: a recording and its findings as one self-contained HTML
 * page (inline CSS, SVG and script; nothing fetched, opens from disk): a header with the
 * findings by severity, the findings with their evidence, the last sample as a table, and per
 * device and process the layers, gaps and host memory over time with the findings marked.
 */
import { GpuLayersError } from '../errors.js';
import type { Finding } from '../diagnosis/finding-schema.js';
import type { LayeredSample } from '../layers/schema.js';
import type { RecordingHeader } from '../recording/recording-header.js';
import { formatBytes } from '../format-bytes.js';
import { formatClock, formatDateTime, formatDuration } from './chart-scales.js';
import { finalSampleTable } from './final-sample-table.js';
import { escapeHtml } from './html-escape.js';
import { hasLoad, renderLoadBand } from './load-band.js';
import { findingsSection, findingsSummary, placeFindings, type PlacedFinding } from './report-findings.js';
import { REPORT_SCRIPT } from './report-script.js';
import { REPORT_CSS } from './report-style.js';
import { buildTimeline, deviceSeries, gapSeries, hostSeries, processLayerSeries, type DeviceTrack, type ProcessTrack, type Timeline } from './report-series.js';
import { hasData, renderChart, type ChartMarker, type ChartSpec } from './svg-chart.js';

export interface ReportInput {
  header: RecordingHeader;
  samples: LayeredSample[];
  findings: Finding[];
  title?: string;
}

/** More points than a chart is wide in pixels add bytes, not detail. */
const MAX_POINTS = 600;
const WIDE = { width: 960, height: 250 };
const SMALL = { width: 480, height: 190 };

interface Frame {
  timeline: Timeline;
  domain: [number, number];
  gapMs: number;
  placed: PlacedFinding[];
}

function median(values: number[]): number {
  if (values.length === 0) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function frameOf(input: ReportInput, samples: LayeredSample[]): Frame {
  const timeline = buildTimeline(samples);
  const { times } = timeline;
  const first = times[0]!;
  const last = times[times.length - 1]!;
  const pad = first === last ? Math.max(input.header.intervalMs, 1000) : 0;
  const steps = times.slice(1).map((t, i) => t - times[i]!);
  // Readings further apart than a few intervals mean the recorder stopped: the lines break there.
  const gapMs = Math.max(3 * input.header.intervalMs, 2.5 * median(steps));
  return { timeline, domain: [first - pad, last + pad], gapMs, placed: placeFindings(input.findings, timeline) };
}

function markersFor(frame: Frame, device: DeviceTrack, process: ProcessTrack | null): ChartMarker[] {
  return frame.placed
    .filter((p) => p.at !== null && p.device === device && (process === null ? p.processes.length === 0 : p.processes.includes(process)))
    .map((p) => ({ t: p.at!, findingId: p.finding.id, anchor: p.anchor, severity: p.finding.severity, title: p.finding.title }));
}

function chart(frame: Frame, id: string, label: string, size: { width: number; height: number }, stacked: ChartSpec['stacked'], lines: ChartSpec['lines'], markers: ChartMarker[]): string {
  return renderChart({ id, label, times: frame.timeline.times, domain: frame.domain, stacked, lines, markers, ...size, maxPoints: MAX_POINTS, gapMs: frame.gapMs });
}

function seenLine(frame: Frame, track: ProcessTrack): string {
  const { times } = frame.timeline;
  const readings = track.readings.filter((r) => r !== null).length;
  const from = times[track.firstSample]!;
  const to = times[track.lastSample]!;
  const seconds = to - from < 60_000;
  const parts = [`seen ${formatClock(from, seconds)} → ${formatClock(to, seconds)} UTC (${readings} ${readings === 1 ? 'reading' : 'readings'})`];
  const last = track.readings[track.lastSample]!;
  if (last.host?.containerId) parts.push(`container ${last.host.containerId.slice(0, 12)}`);
  const framework = last.layers.framework;
  if (framework !== null) parts.push(`vLLM (${framework.matchedBy})`);
  if (last.layers.allocator === null) parts.push('no allocator layer at the last reading (companion not running?)');
  return parts.join(' · ');
}

/** The engine's request phase under the memory chart, where the recording has it. */
function loadPart(frame: Frame, track: ProcessTrack): string {
  const loads = track.readings.map((r) => r?.layers.framework?.load ?? null);
  if (!hasLoad(loads)) return '';
  return `<h4>Load</h4>${renderLoadBand({ id: `load-${track.id}`, label: `pid ${track.pid}: request phase`, times: frame.timeline.times, domain: frame.domain, width: WIDE.width, loads, gapMs: frame.gapMs })}`;
}

function processSection(frame: Frame, device: DeviceTrack, track: ProcessTrack): string {
  const markers = markersFor(frame, device, track);
  const layers = processLayerSeries(track);
  const gaps = gapSeries(track);
  const host = hostSeries(track);
  const command = track.command === null || track.command === '' ? '' : ` <code>${escapeHtml(track.command)}</code>`;
  const gapsPart = hasData(gaps)
    ? chart(frame, `gaps-${track.id}`, `pid ${track.pid}: gaps between the layers`, SMALL, [], gaps, markers)
    : '<p class="no-data">No gap figures: every gap needs the allocator layer, and the companion was not seen in this process.</p>';
  const hostPart = hasData(host)
    ? chart(frame, `host-${track.id}`, `pid ${track.pid}: host memory`, SMALL, [], host, markers)
    : '<p class="no-data">No host readings for this process (not visible from the recorder\'s PID namespace, or not asked for).</p>';
  return (
    `<section class="process" id="process-${escapeHtml(track.id)}" data-pid="${track.pid}"><h3>pid ${track.pid}${command}</h3>` +
    `<p class="meta">${escapeHtml(seenLine(frame, track))}</p>` +
    `<h4>Device memory by layer</h4>${chart(frame, `process-${track.id}`, `pid ${track.pid}: device memory by layer`, WIDE, layers.stacked, layers.lines, markers)}` +
    loadPart(frame, track) +
    `<div class="pair"><div><h4>Gaps</h4>${gapsPart}</div><div><h4>Host memory</h4>${hostPart}</div></div></section>`
  );
}

function deviceSection(frame: Frame, device: DeviceTrack): string {
  const series = deviceSeries(device);
  const last = device.readings.findLast((d) => d !== null) ?? null;
  const facts = [
    device.uuid ?? 'UUID unknown',
    device.cudaOrdinal === null ? 'no CUDA ordinal' : `cuda:${device.cudaOrdinal}`,
    `total ${formatBytes(last?.memory.totalBytes ?? null)}`,
    `${device.processes.length} ${device.processes.length === 1 ? 'process' : 'processes'} seen`,
  ];
  const processes = device.processes.map((p) => processSection(frame, device, p)).join('');
  return (
    `<section class="card device" id="device-${device.index}"><h2>GPU ${device.index} <span class="muted">${escapeHtml(device.name ?? 'unknown model')}</span></h2>` +
    `<p class="meta">${escapeHtml(facts.join(' · '))}</p>` +
    `<h4>Device memory by process</h4>${chart(frame, `device-${device.index}`, `GPU ${device.index}: memory by process`, WIDE, series.stacked, series.lines, markersFor(frame, device, null))}` +
    (processes === '' ? '<p class="no-data">No process held memory on this device during the recording.</p>' : processes) +
    '</section>'
  );
}

function cudaVersion(encoded: number | null): string | null {
  return encoded === null ? null : `${Math.floor(encoded / 1000)}.${Math.floor((encoded % 1000) / 10)}`;
}

function headerBlock(input: ReportInput, samples: LayeredSample[], frame: Frame, title: string): string {
  const { header } = input;
  const { times } = frame.timeline;
  const first = times[0]!;
  const last = times[times.length - 1]!;
  const lastSample = samples[samples.length - 1]!;
  const driver = header.driverVersion ?? lastSample.driver.version;
  const cuda = cudaVersion(header.cudaDriverVersion ?? lastSample.driver.cudaDriverVersion);
  const facts: [string, string][] = [
    ['host', header.host],
    ['gpu-layers', header.gpuLayersVersion],
    ['driver', `${driver ?? 'n/a'}${cuda === null ? '' : ` · CUDA ${cuda}`}`],
    ['recorded', `${formatDateTime(first)} → ${formatClock(last, true)}${formatDateTime(first).slice(0, 10) === formatDateTime(last).slice(0, 10) ? '' : ` (${formatDateTime(last).slice(0, 10)})`}`],
    ['span', formatDuration(last - first)],
    ['samples', `${samples.length} every ${formatDuration(header.intervalMs)}`],
    ['GPUs', String(frame.timeline.devices.length)],
  ];
  const dl = facts.map(([k, v]) => `<div><dt>${escapeHtml(k)}</dt><dd>${escapeHtml(v)}</dd></div>`).join('');
  const toc = [
    '<a href="#findings">Findings</a>',
    '<a href="#last-sample">Last sample</a>',
    ...frame.timeline.devices.map((d) => `<a href="#device-${d.index}">GPU ${d.index}</a>`),
  ].join('');
  return (
    `<header class="top"><div class="wrap"><h1>${escapeHtml(title)}</h1><dl class="facts">${dl}</dl>` +
    `${findingsSummary(input.findings)}<nav class="toc" aria-label="Sections">${toc}</nav></div></header>`
  );
}

export function renderReportHtml(input: ReportInput): string {
  const samples = input.samples.filter((s) => Number.isFinite(Date.parse(s.takenAt)));
  if (samples.length === 0) {
    throw new GpuLayersError('RECORDING_INVALID', `the recording from ${input.header.host} has no samples with a valid time: there is nothing to report`);
  }
  samples.sort((a, b) => Date.parse(a.takenAt) - Date.parse(b.takenAt));
  const frame = frameOf(input, samples);
  const title = input.title ?? `gpu-layers report: ${input.header.host}`;
  const devices = frame.timeline.devices.map((d) => deviceSection(frame, d)).join('');
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    '<meta name="color-scheme" content="light">',
    // An empty icon, so a browser asks nothing of the network or the disk for one.
    '<link rel="icon" href="data:,">',
    `<title>${escapeHtml(title)}</title><style>${REPORT_CSS}</style></head><body>`,
    headerBlock(input, samples, frame, title),
    '<main class="wrap">',
    findingsSection(frame.placed),
    finalSampleTable(samples[samples.length - 1]!),
    devices === '' ? '<section class="card"><p class="no-data">The recording lists no GPU.</p></section>' : devices,
    '</main>',
    `<footer>Times in UTC. Stacked areas add up to the line drawn over them (a process's driver figure, a device's used memory); a break in a series is a reading that was unknown or missing. Recorded with gpu-layers ${escapeHtml(input.header.gpuLayersVersion)}.</footer>`,
    `<script>${REPORT_SCRIPT}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}
