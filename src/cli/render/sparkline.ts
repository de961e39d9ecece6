/** A series as one row of block characters, for `gpu-layers watch`: lowest shown value ▁, highest █. */
const BLOCKS = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'] as const;

/**
 * One character per value, the last `width` values when there are more. Scaled between the min
 * and max of the known values shown, so a flat series is a flat low line; an unknown value (null,
 * or not a finite number) is a space.
 */
export function sparkline(values: readonly (number | null)[], width: number): string {
  const count = Math.max(0, Math.floor(width));
  if (count === 0) return '';
  const shown = values.slice(-count);
  const known = shown.filter((v): v is number => v !== null && Number.isFinite(v));
  if (known.length === 0) return ' '.repeat(shown.length);
  const min = Math.min(...known);
  const range = Math.max(...known) - min;
  return shown
    .map((v) => {
      if (v === null || !Number.isFinite(v)) return ' ';
      if (range === 0) return BLOCKS[0];
      return BLOCKS[Math.round(((v - min) / range) * (BLOCKS.length - 1))];
    })
    .join('');
}
