/**
 * Which samples a chart draws when a recording has more than it can show: the samples are cut
 * into equal runs and each run keeps the readings with the lowest and the highest total, in
 * time order, so peaks (the OOM) and troughs survive where averaging would flatten them.
 */

/**
 * Indices into the samples, ascending. `total(i)` is the chart's figure to keep extremes of
 * (null: nothing known at i). A run with nothing known keeps its first sample, a gap.
 */
export function pickSamples(count: number, total: (i: number) => number | null, maxPoints: number): number[] {
  if (count <= maxPoints) return Array.from({ length: count }, (_, i) => i);
  const runs = Math.max(1, Math.floor(maxPoints / 2));
  const picked: number[] = [];
  for (let r = 0; r < runs; r++) {
    const start = Math.floor((r * count) / runs);
    const end = Math.floor(((r + 1) * count) / runs);
    let low: number | null = null;
    let high: number | null = null;
    let lowValue = Infinity;
    let highValue = -Infinity;
    for (let i = start; i < end; i++) {
      const v = total(i);
      if (v === null) continue;
      if (v < lowValue) [low, lowValue] = [i, v];
      if (v > highValue) [high, highValue] = [i, v];
    }
    if (low === null || high === null) picked.push(start);
    else if (low === high) picked.push(low);
    else picked.push(Math.min(low, high), Math.max(low, high));
  }
  return picked;
}
