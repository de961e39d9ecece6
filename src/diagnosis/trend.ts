/**
 * A series summed up for a finding's evidence: its level at both ends, its slope and how well a
 * line fits it, computed on the same time buckets as the rules' shapes (series-shape.ts), so the
 * figures do not depend on how often it was sampled.
 */
import type { Point } from './process-history.js';
import { bucketed, lineFit, median, robustSlopePerHour, type Rise } from './series-shape.js';

export interface Trend {
  /** Medians of its first and last buckets (up to three each). */
  first: number;
  last: number;
  change: number;
  /** Theil-Sen slope per hour. */
  slopePerHour: number;
  /** R² of a least-squares line through its buckets; null when it is constant. */
  fit: number | null;
  /** Readings. */
  samples: number;
}

export function trend(points: readonly Point[]): Trend {
  if (points.length === 0) return { first: 0, last: 0, change: 0, slopePerHour: 0, fit: null, samples: 0 };
  const b = bucketed(points, 0).points;
  const edge = Math.min(3, Math.max(1, Math.floor(b.length / 4)));
  const first = median(b.slice(0, edge).map((p) => p.v));
  const last = median(b.slice(-edge).map((p) => p.v));
  return { first, last, change: last - first, slopePerHour: robustSlopePerHour(b), fit: lineFit(b), samples: points.length };
}

/** The part of a series within a rise's time span. */
export function within(points: readonly Point[], rise: Pick<Rise, 'from' | 'to'>): Point[] {
  return points.filter((p) => p.t >= rise.from && p.t <= rise.to);
}

/** A rise as a trend. */
export function riseTrend(rise: Rise): Trend {
  return { first: rise.first, last: rise.last, change: rise.rise, slopePerHour: rise.slopePerHour, fit: rise.fit, samples: rise.samples };
}
