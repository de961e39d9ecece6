/**
 * Axis arithmetic for the report's charts: "nice" byte ticks in binary units (MiB, GiB) and
 * clock-aligned time ticks in UTC, plus the time and byte wording the report uses.
 */
import { formatBytes } from '../format-bytes.js';

export interface Tick {
  value: number;
  label: string;
  /** A second line under a time tick: the date, where it changes. */
  date?: string;
}

export interface ValueScale {
  min: number;
  max: number;
  ticks: Tick[];
}

const BYTE_UNITS: [string, number][] = [
  ['B', 1],
  ['KiB', 1024],
  ['MiB', 1024 ** 2],
  ['GiB', 1024 ** 3],
  ['TiB', 1024 ** 4],
];

function niceStep(raw: number, integer: boolean): number {
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((s) => s >= raw) ?? 10 * magnitude;
  return integer ? Math.max(1, Math.ceil(step)) : step;
}

function decimalsOf(step: number): number {
  for (let d = 0; d < 6; d++) if (Math.abs(Math.round(step * 10 ** d) - step * 10 ** d) < 1e-9) return d;
  return 6;
}

/** A byte axis from lo to hi (always including 0), with about `target` ticks in one binary unit. */
export function byteScale(lo: number, hi: number, target: number): ValueScale {
  let min = Math.min(0, lo);
  let max = Math.max(0, hi);
  if (max === min) max = min + Math.max(1024 ** 2, Math.abs(min));
  const largest = Math.max(Math.abs(min), Math.abs(max));
  const [unit, factor] = [...BYTE_UNITS].reverse().find(([, f]) => f <= largest) ?? BYTE_UNITS[0]!;
  const step = niceStep((max - min) / factor / target, unit === 'B');
  const first = Math.floor(min / factor / step);
  const last = Math.ceil(max / factor / step);
  const decimals = decimalsOf(step);
  const ticks: Tick[] = [];
  for (let i = first; i <= last; i++) {
    const inUnit = Number((i * step).toFixed(decimals));
    ticks.push({ value: inUnit * factor, label: inUnit === 0 ? '0' : `${inUnit.toFixed(decimals)} ${unit}` });
  }
  min = first * step * factor;
  max = last * step * factor;
  return { min, max, ticks };
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [
  SECOND, 2 * SECOND, 5 * SECOND, 10 * SECOND, 15 * SECOND, 30 * SECOND,
  MINUTE, 2 * MINUTE, 5 * MINUTE, 10 * MINUTE, 15 * MINUTE, 30 * MINUTE,
  HOUR, 2 * HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 30 * DAY,
];

/** Wall-clock time of day in UTC: "14:05" or "14:05:30". */
export function formatClock(ms: number, seconds: boolean): string {
  return new Date(ms).toISOString().slice(11, seconds ? 19 : 16);
}

export function formatDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** "2026-11-26 14:05:30 UTC". */
export function formatDateTime(ms: number): string {
  return `${formatDate(ms)} ${formatClock(ms, true)} UTC`;
}

/** Ticks on whole minutes, hours ... in UTC, about `target` of them; the date under the first tick of each day. */
export function timeTicks(from: number, to: number, target: number): Tick[] {
  const span = Math.max(to - from, 1);
  const step = TIME_STEPS.find((s) => span / s <= target) ?? TIME_STEPS[TIME_STEPS.length - 1]!;
  const manyDays = formatDate(from) !== formatDate(to);
  const ticks: Tick[] = [];
  let previousDate: string | null = null;
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    const tick: Tick = { value: t, label: formatClock(t, step < MINUTE) };
    const date = formatDate(t);
    if (manyDays && date !== previousDate) tick.date = date.slice(5);
    previousDate = date;
    ticks.push(tick);
  }
  return ticks;
}

/** "500 ms", "1 h 02 min", "4 min 10 s", "3 d 4 h". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, '0')} s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ${String(m % 60).padStart(2, '0')} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}
