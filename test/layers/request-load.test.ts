/**
 * The request load of one engine from its counters, sample to sample (nextRequestLoad), and from
 * the log's stats line (requestLoadFromLog): a trickle of requests seen at two sampling rates, a
 * counter reset, idle then a burst, time going backwards, and properties over any sequence.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { counterIncrease, nextRequestLoad, requestLoadFromLog, type LoadState } from '../../src/layers/request-load.js';
import { REQUEST_PHASES, type RequestLoad } from '../../src/layers/schema.js';
import { parseVllmLog } from '../../src/sources/vllm-log.js';
import type { VllmCounters } from '../../src/sources/vllm-metrics.js';
import { fuzzParams } from '../helpers/fuzz.js';
import { repoRoot } from '../helpers/paths.js';

const counters = (promptTokens: number | null, generationTokens: number | null, requestsFinished: number | null = null): VllmCounters => ({
  promptTokens,
  generationTokens,
  requestsFinished,
  preemptions: null,
  prefixCacheQueries: null,
  prefixCacheHits: null,
});

interface Sample {
  atMs: number;
  counters: VllmCounters;
  running: number | null;
  waiting: number | null;
}

/** The loads of a sequence of samples, each from the state the one before left. */
function run(samples: Sample[], start: LoadState | null = null): { loads: RequestLoad[]; state: LoadState | null } {
  let state = start;
  const loads = samples.map((sample) => {
    const next = nextRequestLoad(state, sample.counters, sample.running, sample.waiting, sample.atMs);
    state = next.state;
    return next.load;
  });
  return { loads, state };
}

/**
 * A vLLM engine serving requests, as its counters would read at time t (seconds): each request's
 * prompt tokens are counted when its prefill ends (0.2 s after arrival), its generated tokens one
 * by one over its decode, and it is running from arrival until its last token.
 */
function engine(requests: { at: number; prompt: number; generated: number; decodeSeconds: number }[]) {
  return (t: number): Sample => {
    let prompt = 0;
    let generated = 0;
    let finished = 0;
    let running = 0;
    for (const r of requests) {
      const prefillEnd = r.at + 0.2;
      const end = prefillEnd + r.decodeSeconds;
      if (t >= prefillEnd) prompt += r.prompt;
      generated += Math.floor(r.generated * Math.min(1, Math.max(0, (t - prefillEnd) / r.decodeSeconds)));
      if (t >= end) finished++;
      if (t >= r.at && t < end) running++;
    }
    return { atMs: t * 1000, counters: counters(prompt, generated, finished), running, waiting: 0 };
  };
}

const sampleEvery = (seconds: number, until: number, at: (t: number) => Sample) => Array.from({ length: Math.floor(until / seconds) + 1 }, (_, i) => at(i * seconds));

describe('counterIncrease', () => {
  it('the growth; after a restart (the counter went down) the current value, as rate() takes it', () => {
    expect(counterIncrease(100, 150)).toBe(50);
    expect(counterIncrease(100, 100)).toBe(0);
    expect(counterIncrease(10_000, 150)).toBe(150);
    expect(counterIncrease(null, 150)).toBeNull();
    expect(counterIncrease(100, null)).toBeNull();
    expect(counterIncrease(Number.NaN, 1)).toBeNull();
    expect(counterIncrease(1, -5)).toBeNull();
  });
});

describe('nextRequestLoad', () => {
  it('the first sample has no rates; idle when nothing runs or waits, else no phase', () => {
    expect(nextRequestLoad(null, counters(10, 20), 0, 0, 1000).load).toEqual({
      source: 'metrics',
      promptTokensPerSecond: null,
      generationTokensPerSecond: null,
      requestsFinishedPerSecond: null,
      phase: 'idle',
      sinceLastPrefillSeconds: null,
      lastPrefillBurstTokens: null,
      idleBeforeLastBurstSeconds: null,
    });
    expect(nextRequestLoad(null, counters(10, 20), 2, 0, 1000).load.phase).toBeNull();
    expect(nextRequestLoad(null, counters(10, 20), null, null, 1000).load.phase).toBeNull();
  });

  it('rates over the interval; prefill-heavy when more prompt than generated tokens, decode otherwise', () => {
    const { loads } = run([
      { atMs: 0, counters: counters(0, 0, 0), running: 0, waiting: 0 },
      { atMs: 10_000, counters: counters(5000, 40, 0), running: 4, waiting: 2 },
      { atMs: 20_000, counters: counters(5100, 440, 3), running: 1, waiting: 0 },
      { atMs: 30_000, counters: counters(5100, 440, 3), running: 1, waiting: 0 },
      { atMs: 40_000, counters: counters(5100, 440, 4), running: 0, waiting: 0 },
    ]);
    expect(loads.map((l) => [l.promptTokensPerSecond, l.generationTokensPerSecond, l.requestsFinishedPerSecond, l.phase])).toEqual([
      [null, null, null, 'idle'],
      [500, 4, 0, 'prefill-heavy'],
      [10, 40, 0.3, 'decode'],
      // A request running that made no token in the interval: not idle.
      [0, 0, 0, 'decode'],
      [0, 0, 0.1, 'idle'],
    ]);
    expect(loads.map((l) => [l.sinceLastPrefillSeconds, l.lastPrefillBurstTokens])).toEqual([
      [null, null],
      [0, 5000],
      [0, 5100],
      [10, 5100],
      [20, 5100],
    ]);
  });

  it('a trickle (a request every 3 minutes) sampled every 5 s and every 60 s: the same phases, each request one burst, sinceLastPrefill within a sample interval', () => {
    // Prefill-dominated requests that end within the second they arrive in: a sample interval of
    // either length holds each one whole.
    const requests = Array.from({ length: 20 }, (_, k) => ({ at: 180 * k + 1, prompt: 2000, generated: 50, decodeSeconds: 1 }));
    const at = engine(requests);
    const fine = run(sampleEvery(5, 3600, at)).loads;
    const coarse = run(sampleEvery(60, 3600, at)).loads;
    for (const loads of [fine, coarse]) {
      // Only the two phases a trickle has, and as many prefill-heavy intervals as requests.
      expect(new Set(loads.map((l) => l.phase))).toEqual(new Set(['idle', 'prefill-heavy']));
      expect(loads.filter((l) => l.phase === 'prefill-heavy')).toHaveLength(requests.length);
      expect(new Set(loads.filter((l) => l.phase === 'prefill-heavy').map((l) => l.lastPrefillBurstTokens))).toEqual(new Set([2000]));
    }
    // The share of each phase in the intervals differs only by how long the intervals are: one busy
    // interval a request, the rest idle.
    const idleShare = (loads: RequestLoad[]) => loads.slice(1).filter((l) => l.phase === 'idle').length / (loads.length - 1);
    expect(idleShare(fine)).toBeCloseTo(1 - 20 / 720, 10);
    expect(idleShare(coarse)).toBeCloseTo(1 - 20 / 60, 10);
    // At the instants both rates sample (every 60 s), the time since the last prefill differs by
    // less than one coarse interval: the fine sampling puts the prefill's end earlier, by under 60 s.
    for (let i = 1; i < coarse.length; i++) {
      const c = coarse[i]!.sinceLastPrefillSeconds;
      const f = fine[i * 12]!.sinceLastPrefillSeconds;
      expect(c === null, `t=${i * 60}`).toBe(f === null);
      if (c === null || f === null) continue;
      expect(f - c).toBeGreaterThanOrEqual(0);
      expect(f - c).toBeLessThan(60);
    }
    // The idle time before each burst: the gap between requests less one interval of either length.
    expect(fine.at(-1)!.idleBeforeLastBurstSeconds).toBe(180 - 5);
    expect(coarse.at(-1)!.idleBeforeLastBurstSeconds).toBe(180 - 60);
  });

  it('a counter reset mid-run (vLLM restarted): the increase is the new value, no rate goes negative', () => {
    const { loads } = run([
      { atMs: 0, counters: counters(100_000, 50_000, 900), running: 3, waiting: 0 },
      { atMs: 10_000, counters: counters(101_000, 50_500, 910), running: 3, waiting: 0 },
      { atMs: 20_000, counters: counters(150, 20, 0), running: 1, waiting: 0 },
      { atMs: 30_000, counters: counters(300, 50, 1), running: 0, waiting: 0 },
    ]);
    expect(loads.map((l) => [l.promptTokensPerSecond, l.generationTokensPerSecond, l.requestsFinishedPerSecond, l.phase])).toEqual([
      [null, null, null, null],
      [100, 50, 1, 'prefill-heavy'],
      [15, 2, 0, 'prefill-heavy'],
      [15, 3, 0.1, 'prefill-heavy'],
    ]);
    // The burst goes on through the restart: prompt tokens went in every interval.
    expect(loads.at(-1)!.lastPrefillBurstTokens).toBe(1000 + 150 + 150);
  });

  it('idle, then a burst: the idle time before it, then how long since it ended', () => {
    const idle = (t: number): Sample => ({ atMs: t * 1000, counters: counters(5000, 3000, 10), running: 0, waiting: 0 });
    const samples: Sample[] = [
      ...Array.from({ length: 61 }, (_, i) => idle(i * 10)), // 0 .. 600 s
      { atMs: 610_000, counters: counters(9000, 3010, 10), running: 8, waiting: 24 },
      { atMs: 620_000, counters: counters(13_000, 3020, 10), running: 16, waiting: 16 },
      { atMs: 630_000, counters: counters(17_000, 3030, 10), running: 32, waiting: 0 },
      { atMs: 640_000, counters: counters(17_000, 3630, 20), running: 22, waiting: 0 },
      { atMs: 650_000, counters: counters(17_000, 4230, 42), running: 0, waiting: 0 },
      { atMs: 660_000, counters: counters(17_000, 4230, 42), running: 0, waiting: 0 },
    ];
    const { loads } = run(samples);
    const tail = loads.slice(-6);
    expect(tail.map((l) => l.phase)).toEqual(['prefill-heavy', 'prefill-heavy', 'prefill-heavy', 'decode', 'decode', 'idle']);
    expect(tail.map((l) => l.idleBeforeLastBurstSeconds)).toEqual([600, 600, 600, 600, 600, 600]);
    expect(tail.map((l) => l.lastPrefillBurstTokens)).toEqual([4000, 8000, 12_000, 12_000, 12_000, 12_000]);
    expect(tail.map((l) => l.sinceLastPrefillSeconds)).toEqual([0, 0, 0, 10, 20, 30]);
    expect(loads[60]).toMatchObject({ phase: 'idle', sinceLastPrefillSeconds: null, idleBeforeLastBurstSeconds: null });
    // A burst in the first interval measured: the idle time before it is not known.
    expect(run(samples.slice(60)).loads[1]).toMatchObject({ phase: 'prefill-heavy', idleBeforeLastBurstSeconds: null, lastPrefillBurstTokens: 4000 });
    // A second burst right after a busy interval: no idle time before it.
    const again = run([...samples.slice(60, 65), { atMs: 650_000, counters: counters(18_000, 4230, 42), running: 3, waiting: 0 }]).loads;
    expect(again.at(-2)!.phase).toBe('decode');
    expect(again.at(-1)).toMatchObject({ idleBeforeLastBurstSeconds: 0, lastPrefillBurstTokens: 1000, sinceLastPrefillSeconds: 0 });
  });

  it('time going backwards or standing still: no rates for that sample, and the state starts again', () => {
    const busy = run([
      { atMs: 100_000, counters: counters(0, 0), running: 1, waiting: 0 },
      { atMs: 110_000, counters: counters(800, 10), running: 1, waiting: 0 },
    ]);
    for (const atMs of [105_000, 110_000, Number.NaN]) {
      const next = nextRequestLoad(busy.state, counters(900, 20), 0, 0, atMs);
      expect(next.load).toMatchObject({ promptTokensPerSecond: null, generationTokensPerSecond: null, phase: 'idle', sinceLastPrefillSeconds: null, lastPrefillBurstTokens: null });
      expect(next.state).toMatchObject({ lastPrefillAtMs: null, burstTokens: null, promptTokens: 900 });
    }
  });

  it('counters not exposed: no rates and no phase from tokens', () => {
    const { loads } = run([
      { atMs: 0, counters: counters(null, null), running: 0, waiting: 0 },
      { atMs: 10_000, counters: counters(null, null), running: 0, waiting: 0 },
      { atMs: 20_000, counters: counters(null, null), running: 3, waiting: 0 },
      { atMs: 30_000, counters: counters(500, null), running: 3, waiting: 0 },
      { atMs: 40_000, counters: counters(900, null), running: 3, waiting: 0 },
    ]);
    expect(loads.map((l) => [l.promptTokensPerSecond, l.generationTokensPerSecond, l.phase])).toEqual([
      [null, null, 'idle'],
      [null, null, 'idle'],
      [null, null, null],
      [null, null, null],
      // Prompt tokens went in, generated tokens are not known: no phase to compare them by.
      [40, null, null],
    ]);
    expect(loads.at(-1)).toMatchObject({ sinceLastPrefillSeconds: 0, lastPrefillBurstTokens: 400 });
  });
});

describe('properties', () => {
  const value = fc.oneof({ weight: 6, arbitrary: fc.nat(1_000_000) }, { weight: 1, arbitrary: fc.constantFrom(null, -1, Number.NaN, Number.POSITIVE_INFINITY, 1e300) });
  const sample = fc.record({
    stepMs: fc.oneof({ weight: 8, arbitrary: fc.integer({ min: 1, max: 120_000 }) }, { weight: 1, arbitrary: fc.integer({ min: -60_000, max: 0 }) }),
    prompt: value,
    generation: value,
    finished: value,
    running: fc.option(fc.nat(500), { nil: null }),
    waiting: fc.option(fc.nat(500), { nil: null }),
  });
  const toSamples = (items: { stepMs: number; prompt: number | null; generation: number | null; finished: number | null; running: number | null; waiting: number | null }[]) => {
    let atMs = 1_700_000_000_000;
    return items.map((s): Sample => {
      atMs += s.stepMs;
      return { atMs, counters: counters(s.prompt, s.generation, s.finished), running: s.running, waiting: s.waiting };
    });
  };

  it('rates are never negative; times and sizes never below 0; the state survives JSON', () => {
    fc.assert(
      fc.property(fc.array(sample, { minLength: 1, maxLength: 40 }), (items) => {
        let state: LoadState | null = null;
        for (const s of toSamples(items)) {
          const next = nextRequestLoad(state === null ? null : (JSON.parse(JSON.stringify(state)) as LoadState), s.counters, s.running, s.waiting, s.atMs);
          expect(next).toEqual(nextRequestLoad(state, s.counters, s.running, s.waiting, s.atMs));
          const { load } = next;
          for (const v of [load.promptTokensPerSecond, load.generationTokensPerSecond, load.requestsFinishedPerSecond, load.sinceLastPrefillSeconds, load.lastPrefillBurstTokens, load.idleBeforeLastBurstSeconds]) {
            expect(v === null || (Number.isFinite(v) && v >= 0), String(v)).toBe(true);
          }
          expect(load.phase === null || REQUEST_PHASES.includes(load.phase)).toBe(true);
          state = next.state;
        }
      }),
      fuzzParams(500),
    );
  });

  it('the phase is idle exactly when nothing moved: no prompt or generated token, nothing running or waiting', () => {
    const known = fc.record({
      stepMs: fc.integer({ min: 1, max: 120_000 }),
      // Counters that mostly stand still or grow, sometimes restart lower.
      prompt: fc.nat(5),
      generation: fc.nat(5),
      finished: fc.constant(0),
      running: fc.nat(2),
      waiting: fc.nat(2),
    });
    fc.assert(
      fc.property(fc.array(fc.tuple(known, fc.boolean(), fc.boolean()), { minLength: 1, maxLength: 40 }), (items) => {
        let prompt = 0;
        let generation = 0;
        const samples = toSamples(
          items.map(([s, grow, restart]) => {
            // Here the counters' levels: grow by 0..5 (often 0), or restart at 0..5.
            prompt = restart ? s.prompt : prompt + (grow ? s.prompt : 0);
            generation = restart ? s.generation : generation + (grow ? s.generation : 0);
            return { ...s, prompt, generation };
          }),
        );
        const { loads } = run(samples);
        loads.forEach((load, i) => {
          const s = samples[i]!;
          const before = samples[i - 1];
          const increase = (a: number, b: number) => (b >= a ? b - a : b);
          const nothing = s.running === 0 && s.waiting === 0;
          const moved =
            before === undefined ? false : increase(before.counters.promptTokens!, s.counters.promptTokens!) > 0 || increase(before.counters.generationTokens!, s.counters.generationTokens!) > 0;
          expect(load.phase === 'idle', `sample ${i}`).toBe(nothing && !moved);
        });
      }),
      fuzzParams(500),
    );
  });
});

describe('requestLoadFromLog', () => {
  const NOW = new Date(2026, 5, 1).getTime();
  const log = parseVllmLog(readFileSync(path.join(repoRoot, 'test/fixtures/vllm/log-v1-stats-mtp.log'), 'utf8'), { now: NOW });

  it('the latest stats line of the captured log: its throughputs, decode, and the burst before it', () => {
    const stats = log.stats[0]!;
    expect(requestLoadFromLog(stats, stats.loggedAt! + 5000)).toEqual({
      source: 'log',
      promptTokensPerSecond: stats.promptTokensPerSecond,
      generationTokensPerSecond: stats.generationTokensPerSecond,
      requestsFinishedPerSecond: null,
      phase: 'decode',
      // The burst's last line was logged 10 s before the latest one, read 5 s after it.
      sinceLastPrefillSeconds: 15,
      lastPrefillBurstTokens: 301013,
      idleBeforeLastBurstSeconds: 0,
    });
  });

  it('the phase from the line: prefill-heavy, idle, or decode while requests wait', () => {
    const base = { ...log.stats[0]!, lastPrefillAt: null };
    expect(requestLoadFromLog({ ...base, promptTokensPerSecond: 900, generationTokensPerSecond: 30 }, NOW).phase).toBe('prefill-heavy');
    expect(requestLoadFromLog({ ...base, promptTokensPerSecond: 0, generationTokensPerSecond: 0, running: 0, waiting: 0 }, NOW)).toMatchObject({ phase: 'idle', sinceLastPrefillSeconds: null });
    expect(requestLoadFromLog({ ...base, promptTokensPerSecond: 0, generationTokensPerSecond: 0, running: 0, waiting: 5 }, NOW).phase).toBe('decode');
  });
});
