/**
 * One time chart as inline SVG: stacked areas and/or lines over a shared UTC time axis, byte
 * axis in binary units, vertical markers for findings, and an HTML legend with each series'
 * last and peak value (so the figures are readable without the page's script). Unknown values
 * are breaks in a series, never zeros; readings further apart than `gapMs` are not joined.
 */
import type { Severity } from '../diagnosis/finding-schema.js';
import { formatSignedBytes } from '../format-bytes.js';
import { byteScale, timeTicks, type ValueScale } from './chart-scales.js';
import { pickSamples } from './downsample.js';
import { escapeHtml } from './html-escape.js';
import { SEVERITY_COLORS } from './report-palette.js';
import type { Series } from './report-series.js';

export interface ChartMarker {
  t: number;
  findingId: string;
  /** The id of the finding's element in the page. */
  anchor: string;
  severity: Severity;
  title: string;
}

export interface ChartSpec {
  /** data-chart: "device-0", "process-0-4242", ... */
  id: string;
  /** What the chart shows, for screen readers and the tooltip heading. */
  label: string;
  times: number[];
  domain: [number, number];
  /** Drawn as stacked areas, first at the bottom. */
  stacked: Series[];
  /** Drawn as lines over the areas. */
  lines: Series[];
  markers: ChartMarker[];
  width: number;
  height: number;
  maxPoints: number;
  gapMs: number;
}

/** Shared with the load band (load-band.ts), whose time axis lines up with the charts above it. */
export const MARGIN = { left: 64, right: 14, bottom: 34 };
const MARKER_ROW = 14;
const FONT = 11;

export function hasData(series: Series[]): boolean {
  return series.some((s) => s.values.some((v) => v !== null));
}

function num(v: number): string {
  return (Math.round(v * 10) / 10).toString();
}

interface Geometry {
  x(t: number): number;
  y(v: number): number;
  left: number;
  right: number;
  top: number;
  bottom: number;
}

/** Runs of consecutive picked samples where `known(i)` holds and no time gap separates them. */
function runs(picked: number[], times: number[], gapMs: number, known: (i: number) => boolean): number[][] {
  const out: number[][] = [];
  let current: number[] = [];
  for (const i of picked) {
    const previous = current[current.length - 1];
    if (!known(i) || (previous !== undefined && times[i]! - times[previous]! > gapMs)) {
      if (current.length > 0) out.push(current);
      current = [];
    }
    if (known(i)) current.push(i);
  }
  if (current.length > 0) out.push(current);
  return out;
}

function areaPath(segments: number[][], times: number[], top: (i: number) => number, g: Geometry): string {
  const zero = num(g.y(0));
  return segments
    .map((run) => {
      // A lone reading gets a sliver of width so it shows.
      const points = run.length === 1 ? [[g.x(times[run[0]!]!) - 1.5, run[0]!], [g.x(times[run[0]!]!) + 1.5, run[0]!]] as const : run.map((i) => [g.x(times[i]!), i] as const);
      const edge = points.map(([x, i]) => `L${num(x)} ${num(g.y(top(i)))}`).join('');
      return `M${num(points[0]![0])} ${zero}${edge}L${num(points[points.length - 1]![0])} ${zero}Z`;
    })
    .join('');
}

function linePath(segments: number[][], times: number[], value: (i: number) => number, g: Geometry): { d: string; dots: [number, number][] } {
  const dots: [number, number][] = [];
  const d = segments
    .map((run) => {
      if (run.length === 1) dots.push([g.x(times[run[0]!]!), g.y(value(run[0]!))]);
      return run.map((i, k) => `${k === 0 ? 'M' : 'L'}${num(g.x(times[i]!))} ${num(g.y(value(i)))}`).join('');
    })
    .join('');
  return { d, dots };
}

function axes(scale: ValueScale, spec: ChartSpec, g: Geometry): string {
  const parts: string[] = [];
  for (const tick of scale.ticks) {
    const y = num(g.y(tick.value));
    parts.push(`<line class="grid${tick.value === 0 ? ' zero' : ''}" x1="${g.left}" x2="${g.right}" y1="${y}" y2="${y}"/>`);
    parts.push(`<text class="tick" x="${g.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeHtml(tick.label)}</text>`);
  }
  const target = Math.max(3, Math.floor((g.right - g.left) / 80));
  const ticks = timeTicks(spec.domain[0], spec.domain[1], target);
  for (const tick of ticks) {
    const x = num(g.x(tick.value));
    parts.push(`<line class="tick-mark" x1="${x}" x2="${x}" y1="${g.bottom}" y2="${g.bottom + 4}"/>`);
    parts.push(`<text class="tick" x="${x}" y="${g.bottom + 15}" text-anchor="middle">${escapeHtml(tick.label)}</text>`);
    if (tick.date !== undefined) parts.push(`<text class="tick date" x="${x}" y="${g.bottom + 28}" text-anchor="middle">${escapeHtml(tick.date)}</text>`);
  }
  if (!ticks.some((t) => t.date !== undefined && g.x(t.value) > g.right - 60)) parts.push(`<text class="tick" x="${g.right}" y="${g.bottom + 28}" text-anchor="end">UTC</text>`);
  parts.push(`<line class="axis" x1="${g.left}" x2="${g.right}" y1="${g.bottom}" y2="${g.bottom}"/>`);
  return parts.join('');
}

/** Each marker's label row, so labels of nearby markers do not overlap (at most three rows). */
function markerRows(markers: ChartMarker[], x: (t: number) => number): number[] {
  const rowEnds: number[] = [];
  return markers.map((m) => {
    const start = x(m.t);
    const end = start + m.findingId.length * 6.4 + 8;
    let row = rowEnds.findIndex((e) => e < start);
    if (row === -1) row = rowEnds.length < 3 ? rowEnds.length : rowEnds.indexOf(Math.min(...rowEnds));
    rowEnds[row] = end;
    return row;
  });
}

function markersSvg(markers: ChartMarker[], rows: number[], g: Geometry, width: number): string {
  return markers
    .map((m, k) => {
      const x = g.x(m.t);
      const labelY = 11 + rows[k]! * MARKER_ROW;
      const flip = x + m.findingId.length * 6.4 + 6 > width;
      const color = SEVERITY_COLORS[m.severity];
      return (
        `<g class="marker" data-finding-id="${escapeHtml(m.findingId)}"><title>${escapeHtml(`${m.severity}: ${m.title}`)}</title>` +
        `<line x1="${num(x)}" x2="${num(x)}" y1="${labelY + 3}" y2="${g.bottom}" stroke="${color}"/>` +
        `<a href="#${escapeHtml(m.anchor)}"><text x="${num(flip ? x - 4 : x + 4)}" y="${labelY}" text-anchor="${flip ? 'end' : 'start'}" fill="${color}">${escapeHtml(m.findingId)}</text></a></g>`
      );
    })
    .join('');
}

function peakValue(values: (number | null)[]): number | null {
  let peak: number | null = null;
  for (const v of values) if (v !== null && (peak === null || v > peak)) peak = v;
  return peak;
}

function swatch(s: Series, area: boolean): string {
  const shape = area
    ? `<rect x="1" y="1" width="14" height="12" rx="2" fill="${s.color}"/>`
    : `<line x1="0" x2="22" y1="7" y2="7" stroke="${s.color}" stroke-width="2.5"${s.dash === '' ? '' : ` stroke-dasharray="${s.dash}"`}/>`;
  return `<svg class="swatch" width="${area ? 16 : 22}" height="14" aria-hidden="true">${shape}</svg>`;
}

/** Legends give each series' value at the chart's last reading (n/a when that one is unknown), not its last known value. */
function legend(stacked: Series[], lines: Series[], lastReading: number): string {
  const item = (s: Series, area: boolean) => {
    const last = s.values[lastReading] ?? null;
    const peak = peakValue(s.values);
    return (
      `<li data-series="${escapeHtml(s.key)}" title="${escapeHtml(s.help)}">${swatch(s, area)}<span class="name">${escapeHtml(s.label)}</span>` +
      `<span class="figures">last <b>${escapeHtml(formatSignedBytes(last))}</b> · peak ${escapeHtml(formatSignedBytes(peak))}</span></li>`
    );
  };
  return `<ul class="legend">${[...[...stacked].reverse().map((s) => item(s, true)), ...lines.map((s) => item(s, false))].join('')}</ul>`;
}

interface Stack {
  /** Per layer, its top edge: the sum of it and the layers under it (unknown counted as nothing). */
  cumulative: number[][];
  known(i: number): boolean;
  top(i: number): number | null;
}

function stackOf(stacked: Series[]): Stack {
  const cumulative: number[][] = [];
  stacked.forEach((s, k) => cumulative.push(s.values.map((v, i) => (k === 0 ? 0 : cumulative[k - 1]![i]!) + Math.max(0, v ?? 0))));
  const known = (i: number) => stacked.some((s) => s.values[i] !== null);
  return { cumulative, known, top: (i) => (known(i) ? cumulative[cumulative.length - 1]![i]! : null) };
}

/** The chart's figure at sample i, for picking samples: the stack plus the lines; null when nothing is known. */
function totalAt(stack: Stack, lines: Series[], i: number): number | null {
  let sum = stack.top(i);
  for (const s of lines) {
    const v = s.values[i];
    if (v !== null && v !== undefined) sum = (sum ?? 0) + Math.abs(v);
  }
  return sum;
}

function valueRange(picked: number[], stack: Stack, lines: Series[]): [number, number] {
  let lo = 0;
  let hi = 0;
  for (const i of picked) {
    hi = Math.max(hi, stack.top(i) ?? 0);
    for (const s of lines) {
      const v = s.values[i];
      if (v === null || v === undefined) continue;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
  }
  return [lo, hi];
}

export function renderChart(spec: ChartSpec): string {
  const stacked = spec.stacked.filter((s) => hasData([s]));
  const lines = spec.lines.filter((s) => hasData([s]));
  const count = spec.times.length;
  const stack = stackOf(stacked);
  const total = (i: number) => totalAt(stack, lines, i);
  const picked = pickSamples(count, total, spec.maxPoints);
  let lastReading = count - 1;
  while (lastReading > 0 && total(lastReading) === null) lastReading--;
  const downsampled = picked.length < count;
  // When downsampled, neighbouring picks lie up to two runs apart: that is not a gap in the recording.
  const gapMs = downsampled ? Math.max(spec.gapMs, (3 * (spec.domain[1] - spec.domain[0])) / (spec.maxPoints / 2)) : spec.gapMs;
  const [lo, hi] = valueRange(picked, stack, lines);
  const plotHeightGuess = spec.height - MARGIN.bottom - 30;
  const scale = byteScale(lo, hi, Math.max(2, Math.round(plotHeightGuess / 45)));

  const [d0, d1] = spec.domain;
  const left = MARGIN.left;
  const right = spec.width - MARGIN.right;
  const xOf = (t: number) => left + ((t - d0) / (d1 - d0)) * (right - left);
  const markers = spec.markers.filter((m) => m.t >= d0 && m.t <= d1).sort((a, b) => a.t - b.t);
  const rows = markerRows(markers, xOf);
  const top = markers.length === 0 ? 10 : 10 + (Math.max(...rows) + 1) * MARKER_ROW;
  const bottom = spec.height - MARGIN.bottom;
  const g: Geometry = {
    x: xOf,
    y: (v: number) => top + ((scale.max - v) / (scale.max - scale.min)) * (bottom - top),
    left,
    right,
    top,
    bottom,
  };

  const body: string[] = [axes(scale, spec, g)];
  const stackRuns = runs(picked, spec.times, gapMs, stack.known);
  // Each layer is filled from zero to its top edge, the highest first, so the lower ones paint over it.
  for (let k = stacked.length - 1; k >= 0; k--) {
    body.push(`<path class="area" data-series="${escapeHtml(stacked[k]!.key)}" fill="${stacked[k]!.color}" d="${areaPath(stackRuns, spec.times, (i) => stack.cumulative[k]![i]!, g)}"/>`);
  }
  for (const s of lines) {
    const { d, dots } = linePath(runs(picked, spec.times, gapMs, (i) => s.values[i] !== null), spec.times, (i) => s.values[i]!, g);
    const dash = s.dash === '' ? '' : ` stroke-dasharray="${s.dash}"`;
    body.push(`<path class="line" data-series="${escapeHtml(s.key)}" stroke="${s.color}"${dash} d="${d}"/>`);
    for (const [x, y] of dots) body.push(`<circle class="dot" cx="${num(x)}" cy="${num(y)}" r="2.2" fill="${s.color}"/>`);
  }
  body.push(markersSvg(markers, rows, g, spec.width));
  body.push(`<line class="guide" x1="0" x2="0" y1="${top}" y2="${bottom}" visibility="hidden"/>`);

  // The tooltip's data: plot edges in viewBox units, the time domain, times as ms after d0.
  const tip = {
    x0: left,
    x1: right,
    d0,
    d1,
    t: picked.map((i) => spec.times[i]! - d0),
    // h: a stacked layer, left out of the tooltip where unknown (the layers that replace each other).
    s: [...[...stacked].reverse().map((s) => ({ s, h: 1 })), ...lines.map((s) => ({ s, h: 0 }))].map(({ s, h }) => ({ l: s.label, c: s.color, h, v: picked.map((i) => s.values[i] ?? null) })),
  };
  const titleId = `chart-${spec.id}-title`;
  const described = [...stacked, ...lines].map((s) => s.label).join(', ');
  const svg =
    `<svg class="chart-svg" data-chart="${escapeHtml(spec.id)}" viewBox="0 0 ${spec.width} ${spec.height}" role="img" aria-labelledby="${escapeHtml(titleId)}" font-size="${FONT}" data-tip="${escapeHtml(JSON.stringify(tip))}">` +
    `<title id="${escapeHtml(titleId)}">${escapeHtml(`${spec.label}: ${described}`)}</title>${body.join('')}</svg>`;
  const note = downsampled ? `<p class="chart-note">${picked.length} of ${count} samples drawn (the lowest and highest of each stretch).</p>` : '';
  return `<figure class="chart" data-label="${escapeHtml(spec.label)}">${svg}${legend(stacked, lines, lastReading)}${note}</figure>`;
}
