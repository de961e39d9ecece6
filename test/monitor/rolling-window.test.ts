/**
 * The rolling window watch and the exporter keep for the diagnosis and the sparklines: samples
 * older than the window's length before the newest drop out, only the newest keeps its reasons,
 * and past maxSamples the older half is thinned to every other sample (the recent half kept
 * whole, the oldest kept so the window keeps its length).
 */
import { describe, expect, it } from 'vitest';

import { joinLayers } from '../../src/layers/join.js';
import type { LayeredSample } from '../../src/layers/schema.js';
import { RollingWindow } from '../../src/monitor/rolling-window.js';
import { inputs, sample } from '../helpers/layered-fixtures.js';

const MINUTE = 60_000;
const START = Date.UTC(2026, 11, 7, 0, 0, 0);

function at(minute: number): LayeredSample {
  return { ...joinLayers(sample(), inputs()), takenAt: new Date(START + minute * MINUTE).toISOString() };
}

const minutes = (window: RollingWindow) => window.samples.map((s) => (Date.parse(s.takenAt) - START) / MINUTE);
const hasReasons = (s: LayeredSample) => s.devices.some((d) => (d.processes ?? []).some((p) => Object.keys(p.errors ?? {}).length > 0));

describe('RollingWindow', () => {
  it('keeps what lies within windowMs of the newest sample', () => {
    const window = new RollingWindow({ windowMs: 10 * MINUTE, maxSamples: 1000 });
    for (let m = 0; m <= 30; m += 5) window.push(at(m));
    expect(minutes(window)).toEqual([20, 25, 30]);
  });

  it('only the newest sample keeps its reasons', () => {
    const window = new RollingWindow({ windowMs: 60 * MINUTE, maxSamples: 1000 });
    window.push(at(0));
    window.push(at(1));
    window.push(at(2));
    expect(hasReasons(at(0))).toBe(true);
    expect(window.samples.map(hasReasons)).toEqual([false, false, true]);
    // The figures themselves are untouched.
    expect(window.samples[0]!.devices[0]!.processes![0]!.layers).toEqual(at(0).devices[0]!.processes![0]!.layers);
  });

  it('past maxSamples thins the older half to every other sample', () => {
    const window = new RollingWindow({ windowMs: 24 * 60 * MINUTE, maxSamples: 8 });
    for (let m = 0; m < 9; m++) window.push(at(m));
    // 9 samples: the older 4 (0-3) thinned to 0 and 2; the newer 5 kept.
    expect(minutes(window)).toEqual([0, 2, 4, 5, 6, 7, 8]);
    for (let m = 9; m < 200; m++) window.push(at(m));
    expect(window.samples.length).toBeLessThanOrEqual(8);
    expect(minutes(window)[0]).toBe(0);
    expect(minutes(window).at(-1)).toBe(199);
  });
});
