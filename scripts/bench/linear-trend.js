// The least-squares trend of a series of timed readings, with the standard errors the exporter
// soak's verdict weighs (scripts/bench/soak-exporter.js): the textbook one, which takes every
// reading as independent evidence, and an autocorrelation-robust one (Newey-West).

/**
 * `points`: [{ t, y }] with t in milliseconds. Returns the slope per `perMs` milliseconds, the
 * textbook standard error, the robust one (residual products weighted by a Bartlett kernel over
 * the points' distance in time: 1 at the same moment, 0 from `bandwidthMs` on; Newey and West
 * 1987, with the n / (n - 2) small-sample factor) and `standardError`, the larger of the two.
 * Fewer than three points, or all at one moment: every figure NaN.
 */
export function linearTrend(points, { perMs, bandwidthMs }) {
  const n = points.length;
  const none = { slope: NaN, standardError: NaN, textbookStandardError: NaN, robustStandardError: NaN };
  if (n < 3) return none;
  const xs = points.map((p) => p.t / perMs);
  const ys = points.map((p) => p.y);
  const mx = xs.reduce((a, b) => a + b) / n;
  const my = ys.reduce((a, b) => a + b) / n;
  const sxx = xs.reduce((sum, x) => sum + (x - mx) ** 2, 0);
  if (sxx === 0) return none;
  const slope = xs.reduce((sum, x, i) => sum + (x - mx) * (ys[i] - my), 0) / sxx;
  const residuals = ys.map((y, i) => y - (my + slope * (xs[i] - mx)));
  const textbook = Math.sqrt(residuals.reduce((sum, e) => sum + e ** 2, 0) / (n - 2) / sxx);
  const scores = residuals.map((e, i) => (xs[i] - mx) * e);
  let meat = 0;
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < n; j++) {
      const weight = 1 - Math.abs(points[i].t - points[j].t) / bandwidthMs;
      if (weight > 0) meat += weight * scores[i] * scores[j];
    }
  }
  const robust = Math.sqrt(((meat / sxx ** 2) * n) / (n - 2));
  return { slope, standardError: Math.max(textbook, robust), textbookStandardError: textbook, robustStandardError: robust };
}
