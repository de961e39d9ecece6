/**
 * The load band under a process's memory chart: its vLLM engine's request phase at each sample
 * (prefill-heavy, decode, idle) as a strip on the same time axis, so memory that moves can be
 * read against the work that moved it (the write-up's "profile by request phase"). Each run of one
 * phase is one rectangle with its own tooltip; the legend gives each phase's share of the time
 * and the peak token rates, so the figures are readable without the page's script.
 */
import type { RequestLoad, RequestPhase } from '../layers/schema.js';
import { escapeHtml } from './html-escape.js';
import { PHASE_COLORS } from './report-palette.js';
import { MARGIN } from './svg-chart.js';

export interface LoadBandSpec {
  id: string;
  label: string;
  times: number[];
  domain: [number, number];
  width: number;
  /** One per sample; null where the load was unknown or the process was not there. */
  loads: (RequestLoad | null)[];
  /** Readings further apart than this are not joined (the recorder stopped). */
  gapMs: number;
}

const HEIGHT = 22;
const PHASE_NAMES: Record<RequestPhase, string> = { 'prefill-heavy': 'prefill-heavy', decode: 'decode', idle: 'idle' };

const clock = (t: number): string => new Date(t).toISOString().slice(11, 19);

export function hasLoad(loads: readonly (RequestLoad | null)[]): boolean {
  return loads.some((l) => l?.phase != null);
}

export function renderLoadBand(spec: LoadBandSpec): string {
  const [d0, d1] = spec.domain;
  const left = MARGIN.left;
  const right = spec.width - MARGIN.right;
  const x = (t: number) => left + ((t - d0) / Math.max(1, d1 - d0)) * (right - left);
  const rects: string[] = [];
  const timeIn: Record<RequestPhase, number> = { 'prefill-heavy': 0, decode: 0, idle: 0 };
  let peakPrompt = 0;
  let peakGeneration = 0;
  // A run is one phase over consecutive readings; each reading holds until the next one.
  let run: { phase: RequestPhase; from: number; to: number } | null = null;
  const close = () => {
    if (run === null) return;
    const width = Math.max(0.5, x(run.to) - x(run.from));
    rects.push(
      `<rect class="phase" data-phase="${run.phase}" x="${x(run.from).toFixed(1)}" y="2" width="${width.toFixed(1)}" height="${HEIGHT - 4}" fill="${PHASE_COLORS[run.phase]}">` +
        `<title>${escapeHtml(`${PHASE_NAMES[run.phase]} ${clock(run.from)} → ${clock(run.to)} UTC`)}</title></rect>`,
    );
    timeIn[run.phase] += run.to - run.from;
    run = null;
  };
  spec.loads.forEach((load, i) => {
    const t = spec.times[i]!;
    const next = spec.times[i + 1];
    const phase = load?.phase ?? null;
    peakPrompt = Math.max(peakPrompt, load?.promptTokensPerSecond ?? 0);
    peakGeneration = Math.max(peakGeneration, load?.generationTokensPerSecond ?? 0);
    const end = next !== undefined && next - t <= spec.gapMs ? next : t;
    if (phase === null || (run !== null && (run.phase !== phase || t - run.to > spec.gapMs))) close();
    if (phase === null) return;
    if (run === null) run = { phase, from: t, to: end };
    else run.to = end;
  });
  close();
  const known = Object.values(timeIn).reduce((a, b) => a + b, 0);
  const share = (phase: RequestPhase) => (known > 0 ? `${Math.round((timeIn[phase] / known) * 100)}%` : '—');
  const legend =
    `<ul class="legend">` +
    (Object.keys(PHASE_NAMES) as RequestPhase[])
      .map((phase) => `<li data-phase="${phase}"><span class="swatch area" style="background:${PHASE_COLORS[phase]}"></span><span class="name">${PHASE_NAMES[phase]}</span><span class="figures">${share(phase)} of the time</span></li>`)
      .join('') +
    `<li><span class="name">peak</span><span class="figures">${Math.round(peakPrompt).toLocaleString('en-US')} prompt · ${Math.round(peakGeneration).toLocaleString('en-US')} generated tokens/s</span></li></ul>`;
  const titleId = `band-${spec.id}-title`;
  return (
    `<figure class="chart load-band" data-label="${escapeHtml(spec.label)}">` +
    `<svg class="band-svg" data-band="${escapeHtml(spec.id)}" viewBox="0 0 ${spec.width} ${HEIGHT}" role="img" aria-labelledby="${escapeHtml(titleId)}">` +
    `<title id="${escapeHtml(titleId)}">${escapeHtml(`${spec.label}: request phase over time`)}</title>` +
    `<text x="${left - 6}" y="${HEIGHT / 2 + 4}" text-anchor="end" font-size="11">phase</text>${rects.join('')}</svg>${legend}</figure>`
  );
}
