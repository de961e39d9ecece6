/** The block-character row of a series that `gpu-layers watch` draws per gap. */
import { describe, expect, it } from 'vitest';

import { sparkline } from '../../src/cli/render/sparkline.js';

describe('sparkline', () => {
  it('scales between the min and the max shown: min ▁, max █, the rest in proportion', () => {
    expect(sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8)).toBe('▁▂▃▄▅▆▇█');
    // Offset and scale do not matter, only the place between min and max.
    expect(sparkline([1000, 1700, 1350], 10)).toBe('▁█▅');
    expect(sparkline([-5, 5], 2)).toBe('▁█');
  });

  it('a flat series is a flat low line', () => {
    expect(sparkline([42, 42, 42, 42], 4)).toBe('▁▁▁▁');
    expect(sparkline([7], 4)).toBe('▁');
  });

  it('null (and a value that is not a number) is a space, and does not move the scale', () => {
    expect(sparkline([null, 0, null, 7, Number.NaN], 5)).toBe(' ▁ █ ');
    expect(sparkline([null, null], 5)).toBe('  ');
  });

  it('more values than width: the last `width`, scaled among those alone', () => {
    // The 100 falls outside the window, so 1..4 spans the whole range.
    expect(sparkline([100, 1, 2, 3, 4], 4)).toBe('▁▃▆█');
    expect(sparkline([1, 2, 3], 0)).toBe('');
  });

  it('fewer values than width: one character per value, no padding', () => {
    expect(sparkline([1, 2], 10)).toHaveLength(2);
    expect(sparkline([], 10)).toBe('');
  });
});
