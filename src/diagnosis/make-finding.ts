/** Assembles a finding of one process from what a rule measured: subject, window, evidence. */
import type { Evidence, Finding, FindingId, Severity } from './finding-schema.js';
import { deviceAtEnd, hoursToFull } from './growth.js';
import type { Point, ProcessHistory } from './process-history.js';
import type { SteadyWindow } from './steady-window.js';
import { THRESHOLDS } from './thresholds.js';
import type { Trend } from './trend.js';
import { bytes } from './wording.js';

export interface RuleVerdict {
  id: FindingId;
  severity: Severity;
  confidence: number;
  title: string;
  summary: string;
  /** Milliseconds since the epoch. */
  at: number;
  /** Where the window the rule judged starts, when not at the first reading. */
  windowFrom?: number;
  evidence: Evidence[];
  fix: string;
}

export function evidenceOf(series: string, unit: Evidence['unit'], t: Trend, note: string): Evidence {
  return { series, unit, first: t.first, last: t.last, slopePerHour: t.slopePerHour, fit: t.fit, samples: t.samples, note };
}

const iso = (ms: number): string => new Date(ms).toISOString();

export function makeFinding(history: ProcessHistory, verdict: RuleVerdict): Finding {
  const points = history.points;
  return {
    id: verdict.id,
    severity: verdict.severity,
    confidence: Math.round(Math.min(1, Math.max(0, verdict.confidence)) * 100) / 100,
    title: verdict.title,
    summary: verdict.summary,
    subject: { deviceIndex: history.deviceIndex, uuid: history.uuid, pid: history.pid, command: history.command },
    window: { from: iso(verdict.windowFrom ?? points[0]!.t), to: iso(points[points.length - 1]!.t) },
    at: iso(verdict.at),
    evidence: verdict.evidence,
    fix: verdict.fix,
  };
}

/** Confidence from how long the series spans: full from two hours, lower for less. */
export function lengthFactor(series: readonly Point[]): number {
  const hours = series.length < 2 ? 0 : (series[series.length - 1]!.t - series[0]!.t) / 3_600_000;
  return Math.min(1, 0.4 + 0.3 * hours);
}

/** How a summary says what it left out: "" or " (judged from 08:04 UTC, after its start-up)". */
export function startupNote(steady: SteadyWindow): string {
  return steady.startupExcluded ? ` (judged from ${new Date(steady.from).toISOString().slice(11, 16)} UTC, after its start-up)` : '';
}

/**
 * What host growth at `slopePerHour` leaves of the container's room: the time until its working
 * set (what the kubelet evicts on and the OOM killer weighs) reaches its memory limit, critical
 * within `criticalWithinMs`. No limit, or no container figures: warning and nothing said.
 */
export function containerRunway(history: ProcessHistory, slopePerHour: number): { severity: Severity; text: string } {
  const host = history.points[history.points.length - 1]!.process.host;
  const used = host?.containerWorkingSetBytes ?? host?.containerUsageBytes ?? null;
  const limit = host?.containerLimitBytes ?? null;
  if (used === null || limit === null || slopePerHour <= 0) return { severity: 'warning', text: '' };
  const hours = Math.max(0, limit - used) / slopePerHour;
  return {
    severity: hours * 3_600_000 < THRESHOLDS.criticalWithinMs ? 'critical' : 'warning',
    text: ` At this rate the container (${bytes(used)} of its ${bytes(limit)} limit) is OOM-killed in ${hours < 1 ? `${Math.round(hours * 60)} min` : `${hours.toFixed(1)} h`}.`,
  };
}

/**
 * What device growth at `slopePerHour` leaves of the free memory: critical when it runs out
 * within `criticalWithinMs`, and the end of the summary that says how long it lasts (a full stop
 * alone when the free memory is unknown).
 */
export function freeMemoryRunway(history: ProcessHistory, slopePerHour: number): { severity: Severity; ending: string } {
  const { freeBytes } = deviceAtEnd(history);
  const hours = hoursToFull(freeBytes, slopePerHour);
  if (hours === null) return { severity: 'warning', ending: '.' };
  return {
    severity: hours * 3_600_000 < THRESHOLDS.criticalWithinMs ? 'critical' : 'warning',
    ending: `; at this rate the device's ${bytes(freeBytes!)} free lasts ${hours < 1 ? `${Math.round(hours * 60)} min` : `${hours.toFixed(1)} h`}.`,
  };
}
