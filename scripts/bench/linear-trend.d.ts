// Types of linear-trend.js, for the tests that import it.
export interface LinearTrend {
  slope: number;
  standardError: number;
  textbookStandardError: number;
  robustStandardError: number;
}
export function linearTrend(points: readonly { t: number; y: number }[], options: { perMs: number; bandwidthMs: number }): LinearTrend;
