/**
 * The findings of a diagnosis in the report: their order (most severe first), the summary by
 * severity, the section that lists each with its evidence and fix, and which charts mark them.
 */
import type { Evidence, Finding, Severity } from '../diagnosis/finding-schema.js';
import { SEVERITIES } from '../diagnosis/finding-schema.js';
import { formatChange, formatSignedBytes } from '../format-bytes.js';
import { formatDateTime } from './chart-scales.js';
import { escapeHtml } from './html-escape.js';
import type { DeviceTrack, ProcessTrack, Timeline } from './report-series.js';

export interface PlacedFinding {
  finding: Finding;
  /** The id of its element in the page. */
  anchor: string;
  /** Milliseconds of `at`; null when it does not parse. */
  at: number | null;
  device: DeviceTrack | null;
  /** The processes whose charts mark it; empty for a finding about the whole device. */
  processes: ProcessTrack[];
}

const RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

function deviceOf(finding: Finding, timeline: Timeline): DeviceTrack | null {
  const { uuid, deviceIndex } = finding.subject;
  return (uuid !== null ? timeline.devices.find((d) => d.uuid === uuid) : undefined) ?? timeline.devices.find((d) => d.index === deviceIndex) ?? null;
}

/** The process a finding is about; with a reused pid, the one alive at `at`. */
function processesOf(finding: Finding, device: DeviceTrack | null, at: number | null, timeline: Timeline): ProcessTrack[] {
  const pid = finding.subject.pid;
  if (device === null || pid === null) return [];
  const candidates = device.processes.filter((p) => p.pid === pid);
  if (candidates.length <= 1 || at === null) return candidates;
  const alive = candidates.filter((p) => timeline.times[p.firstSample]! <= at && at <= timeline.times[p.lastSample]!);
  return alive.length > 0 ? alive : candidates;
}

/** Most severe first, then by time. */
export function placeFindings(findings: readonly Finding[], timeline: Timeline): PlacedFinding[] {
  return [...findings]
    .sort((a, b) => RANK[a.severity] - RANK[b.severity] || Date.parse(a.at) - Date.parse(b.at))
    .map((finding, k) => {
      const parsed = Date.parse(finding.at);
      const at = Number.isFinite(parsed) ? parsed : null;
      const device = deviceOf(finding, timeline);
      return { finding, anchor: `finding-${k + 1}`, at, device, processes: processesOf(finding, device, at, timeline) };
    });
}

export function severityBadge(severity: Severity): string {
  return `<span class="badge sev-${severity}">${severity}</span>`;
}

/** "No findings", or the count of each severity. */
export function findingsSummary(findings: readonly Finding[]): string {
  if (findings.length === 0) return '<p class="summary-findings none" data-findings-count="0"><a href="#findings">No findings</a></p>';
  const counts = SEVERITIES.map((s) => [s, findings.filter((f) => f.severity === s).length] as const)
    .reverse()
    .map(([s, n]) => `<span class="count sev-${s}${n === 0 ? ' zero' : ''}"><b>${n}</b> ${s}</span>`)
    .join('');
  const noun = findings.length === 1 ? 'finding' : 'findings';
  return `<p class="summary-findings" data-findings-count="${findings.length}"><a href="#findings">${findings.length} ${noun}</a>${counts}</p>`;
}

function signed(v: number, text: string): string {
  return v > 0 ? `+${text}` : v < 0 ? `-${text}` : text;
}

function countText(v: number): string {
  return Number.isInteger(v) ? v.toString() : v.toFixed(2);
}

function evidenceValue(e: Evidence, v: number): string {
  if (e.unit === 'bytes') return formatSignedBytes(v);
  if (e.unit === 'ratio') return `${(v * 100).toFixed(1)}%`;
  return countText(v);
}

function evidenceSlope(e: Evidence): string {
  const v = e.slopePerHour;
  if (e.unit === 'bytes') return `${formatChange(v)}/h`;
  if (e.unit === 'ratio') return `${signed(v, (Math.abs(v) * 100).toFixed(2))} pp/h`;
  return `${signed(v, countText(Math.abs(v)))}/h`;
}

function evidenceTable(evidence: Evidence[]): string {
  if (evidence.length === 0) return '<p class="muted">No evidence series.</p>';
  const rows = evidence
    .map(
      (e) =>
        `<tr><td><code>${escapeHtml(e.series)}</code></td><td class="num">${escapeHtml(evidenceValue(e, e.first))} → ${escapeHtml(evidenceValue(e, e.last))}</td>` +
        `<td class="num">${escapeHtml(evidenceSlope(e))}</td><td class="num">${e.fit === null ? '— (constant)' : e.fit.toFixed(2)}</td>` +
        `<td class="num">${e.samples}</td><td>${escapeHtml(e.note)}</td></tr>`,
    )
    .join('');
  return (
    '<div class="table-scroll"><table class="evidence"><thead><tr><th scope="col">series</th><th scope="col" class="num">first → last</th>' +
    '<th scope="col" class="num">slope</th><th scope="col" class="num">fit R²</th><th scope="col" class="num">samples</th><th scope="col">note</th></tr></thead>' +
    `<tbody>${rows}</tbody></table></div>`
  );
}

function when(iso: string): string {
  const t = Date.parse(iso);
  return escapeHtml(Number.isFinite(t) ? formatDateTime(t) : iso);
}

function subjectLine(placed: PlacedFinding): string {
  const { subject } = placed.finding;
  const parts = [`GPU ${subject.deviceIndex}`];
  if (subject.pid === null) parts.push('whole device');
  else parts.push(`pid ${subject.pid}`);
  let text = escapeHtml(parts.join(' · '));
  if (subject.command !== null && subject.command !== '') text += ` · <code class="command">${escapeHtml(subject.command)}</code>`;
  const target = placed.processes[0] !== undefined ? `process-${placed.processes[0].id}` : placed.device !== null ? `device-${placed.device.index}` : null;
  if (target !== null) text += ` · <a href="#${escapeHtml(target)}">charts</a>`;
  return text;
}

function findingArticle(placed: PlacedFinding): string {
  const f = placed.finding;
  return (
    `<article class="finding sev-${f.severity}" id="${placed.anchor}" data-finding-id="${escapeHtml(f.id)}">` +
    `<header>${severityBadge(f.severity)}<h3>${escapeHtml(f.title)}</h3><code class="finding-id">${escapeHtml(f.id)}</code>` +
    `<span class="confidence" title="how well the data fits the pattern">confidence <b>${Math.round(f.confidence * 100)}%</b></span></header>` +
    `<p class="subject">${subjectLine(placed)}</p>` +
    `<p class="window">window ${when(f.window.from)} → ${when(f.window.to)} · marked at ${when(f.at)}</p>` +
    `<p class="finding-summary">${escapeHtml(f.summary)}</p>` +
    evidenceTable(f.evidence) +
    `<p class="fix"><span class="fix-label">Fix</span> ${escapeHtml(f.fix)}</p></article>`
  );
}

export function findingsSection(placed: PlacedFinding[]): string {
  const body = placed.length === 0 ? '<p class="no-findings">No findings: none of the known failure patterns showed in this recording.</p>' : placed.map(findingArticle).join('');
  return `<section id="findings" class="card"><h2>Findings</h2>${body}</section>`;
}
