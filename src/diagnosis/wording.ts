/** How findings say sizes, rates and durations: binary units, signs on changes. */
import { formatBytes, formatChange } from '../format-bytes.js';

export function bytes(value: number): string {
  return value < 0 ? `-${formatBytes(-Math.round(value))}` : formatBytes(Math.round(value));
}

export const change = formatChange;

export function perHour(value: number): string {
  return `${change(value)}/h`;
}

export function duration(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 1) return `${Math.round(ms / 1000)} s`;
  if (minutes < 120) return `${minutes} min`;
  return `${(minutes / 60).toFixed(1)} h`;
}

export function fitText(fit: number | null): string {
  return fit === null ? 'constant' : `R² ${fit.toFixed(2)}`;
}

export function percent(share: number): string {
  return `${Math.round(share * 100)}%`;
}
