/**
 * parseVllmLog on startup logs of each format era (fixtures written from frameworks.md 5.4), and on
 * the periodic stats lines of V0 and V1 (real lines from public issues, cited in each fixture).
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

import { MAX_STATS_ENGINES, parseVllmLog, VllmLogFollower } from '../../src/sources/vllm-log.js';

const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/vllm');
const read = (name: string) => readFileSync(path.join(dir, name), 'utf8');
const gib = (value: number) => Math.round(value * 2 ** 30);
/** Local time, as vLLM prints it (month 1-12). */
const local = (year: number, month: number, day: number, h: number, m: number, s: number) => new Date(year, month - 1, day, h, m, s).getTime();
/** When the fixtures are read: after every line in them, all of 2026. */
const NOW = local(2026, 6, 1, 0, 0, 0);

/** A fixture's stats lines, read independently of the parser: time (in 2026) and the figures. */
function statsLines(text: string) {
  const pattern =
    /(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d) .*Avg prompt throughput: ([\d.]+) tokens\/s, Avg generation throughput: ([\d.]+) tokens\/s, Running: (\d+) reqs, (?:Waiting|Swapped: \d+ reqs, Pending): (\d+) reqs, GPU KV cache usage: ([\d.]+)%/;
  return text.split('\n').flatMap((line) => {
    const m = pattern.exec(line);
    if (m === null) return [];
    const [month, day, h, min, sec, prompt, generation, running, waiting, kv] = m.slice(1).map(Number) as number[];
    return [{ at: local(2026, month!, day!, h!, min!, sec!), prompt: prompt!, generation: generation!, running: running!, waiting: waiting!, kv: kv! / 100 }];
  });
}

describe('parseVllmLog', () => {
  it('V0 0.6: the one-line profiling results and "# GPU blocks"', () => {
    const log = parseVllmLog(read('log-v0.6.log'));
    expect(log.byPid.size).toBe(0);
    expect(log.untagged).toEqual({
      weightsBytes: gib(14.9888),
      kvCacheBytes: gib(54.31),
      numGpuBlocks: 27806,
      kvCacheTokens: null,
      // "Graph capturing finished in 12 secs." carried no memory figure in V0.
      cudaGraphBytes: null,
      nonTorchBytes: gib(0.36),
    });
  });

  it('~0.8: the multi-line summary, "# cuda blocks" and graph memory', () => {
    expect(parseVllmLog(read('log-v0.8-multiline.log')).untagged).toEqual({
      weightsBytes: gib(14.25),
      kvCacheBytes: gib(55.52),
      numGpuBlocks: 64976,
      kvCacheTokens: null,
      cudaGraphBytes: gib(0.61),
      nonTorchBytes: gib(0.12),
    });
  });

  it('V1, one engine process: figures under its pid, tokens with thousands separators', () => {
    const log = parseVllmLog(read('log-v1-single.log'));
    expect([...log.byPid.keys()]).toEqual([2051]);
    expect(log.byPid.get(2051)).toEqual({
      weightsBytes: gib(14.9926),
      kvCacheBytes: gib(54.02),
      numGpuBlocks: null,
      kvCacheTokens: 442544,
      cudaGraphBytes: gib(0.72),
      nonTorchBytes: null,
    });
  });

  it('V1 with four tensor-parallel workers: each worker its own figures', () => {
    const log = parseVllmLog(read('log-v1-tp4.log'));
    expect([...log.byPid.keys()].sort()).toEqual([3200, 3310, 3311, 3312, 3313]);
    // TP0 also logged the DEBUG profiling summary after loading: its later "weights memory" wins.
    expect(log.byPid.get(3310)).toMatchObject({ weightsBytes: gib(33.88), kvCacheBytes: gib(30.15), cudaGraphBytes: gib(1.05), nonTorchBytes: gib(0.28) });
    expect(log.byPid.get(3311)).toMatchObject({ weightsBytes: gib(33.882), nonTorchBytes: null });
    expect(log.byPid.get(3312)).toMatchObject({ kvCacheBytes: gib(30.16), cudaGraphBytes: gib(1.06) });
    expect(log.byPid.get(3200)).toMatchObject({ kvCacheTokens: 394912, weightsBytes: null });
  });

  it('early V1 (~0.7): "# GPU blocks" without CPU blocks', () => {
    expect(parseVllmLog(read('log-v1-early.log')).untagged).toMatchObject({ numGpuBlocks: 127104, weightsBytes: gib(0.2389) });
  });

  it('colour codes around the level are ignored', () => {
    expect(parseVllmLog(read('log-ansi.log')).untagged.kvCacheBytes).toBe(gib(20.5));
  });

  it('a log with none of the known lines matches nothing', () => {
    const log = parseVllmLog(read('log-unrelated.log'));
    expect(log.matchedLines).toBe(0);
    expect(parseVllmLog('').matchedLines).toBe(0);
  });

  it('the last figure wins after a restart; a negative non-torch figure is kept as logged', () => {
    const log = parseVllmLog('Available KV cache memory: 10.00 GiB\nnon_torch_memory takes -0.05GiB\nAvailable KV cache memory: 12.50 GiB\n');
    expect(log.untagged.kvCacheBytes).toBe(gib(12.5));
    expect(log.untagged.nonTorchBytes).toBe(gib(-0.05));
  });
});

describe('parseVllmLog: periodic stats lines', () => {
  it('V1 (captured): the latest line, and the two-line prefill burst between decode lines', () => {
    const text = read('log-v1-stats-mtp.log');
    const lines = statsLines(text);
    expect(lines).toHaveLength(5);
    const log = parseVllmLog(text, { now: NOW });
    expect(log.matchedLines).toBe(5);
    // Stats lines carry no memory figure: the API server's pid tag makes no entry.
    expect(log.byPid.size).toBe(0);
    const last = lines[4]!;
    // The burst: lines 3 and 4, each averaged over the 10 s since the line before (which had throughput).
    const burst = lines.slice(2, 4).reduce((sum, line, i) => sum + (line.prompt * (line.at - lines[1 + i]!.at)) / 1000, 0);
    expect(log.stats).toEqual([
      {
        engine: '0',
        loggedAt: last.at,
        promptTokensPerSecond: last.prompt,
        generationTokensPerSecond: last.generation,
        running: last.running,
        waiting: last.waiting,
        kvCacheUsage: last.kv,
        lastPrefillAt: lines[3]!.at,
        lastPrefillBurstTokens: Math.round(burst),
        // Generation went on through the line before the burst: no idle time before it.
        idleBeforeLastBurstSeconds: 0,
      },
    ]);
    expect(log.stats[0]!.lastPrefillBurstTokens).toBe(301013);
    expect(log.stats[0]!.loggedAt).toBe(local(2026, 5, 19, 10, 13, 51));
  });

  it('V1 behind docker timestamps (captured): the vLLM time is read; a first line has no known interval', () => {
    const text = read('log-v1-stats-docker.log');
    const lines = statsLines(text);
    const log = parseVllmLog(text, { now: NOW });
    expect(log.matchedLines).toBe(4);
    expect(log.stats).toHaveLength(1);
    expect(log.stats[0]).toMatchObject({
      engine: '0',
      loggedAt: lines[3]!.at,
      running: 10,
      waiting: 0,
      kvCacheUsage: lines[3]!.kv,
      lastPrefillAt: lines[2]!.at,
      lastPrefillBurstTokens: Math.round((lines[2]!.prompt * (lines[2]!.at - lines[1]!.at)) / 1000),
      idleBeforeLastBurstSeconds: 0,
    });
    // The file's first line is a prefill, but nothing says over how long: its tokens are not known.
    const first = parseVllmLog(text.split('\n').slice(0, 2).join('\n'), { now: NOW });
    expect(first.stats[0]).toMatchObject({ lastPrefillAt: lines[0]!.at, lastPrefillBurstTokens: null, idleBeforeLastBurstSeconds: null });
  });

  it('a newer V1 line with fields appended, a SpecDecoding line between (captured)', () => {
    const text = read('log-v1-stats-mm.log');
    const log = parseVllmLog(text, { now: NOW });
    expect(log.matchedLines).toBe(2);
    expect(log.stats).toEqual([
      {
        engine: '0',
        loggedAt: local(2026, 5, 8, 16, 22, 0),
        promptTokensPerSecond: 0,
        generationTokensPerSecond: 0,
        running: 0,
        waiting: 0,
        kvCacheUsage: 0,
        lastPrefillAt: null,
        lastPrefillBurstTokens: null,
        idleBeforeLastBurstSeconds: null,
      },
    ]);
  });

  it('~0.8 V1 without "Engine 000: " (captured): engine null, as its /metrics had no engine label', () => {
    const text = read('log-v1-stats-early.log');
    const lines = statsLines(text);
    const log = parseVllmLog(text, { now: NOW });
    expect(log.stats).toEqual([
      expect.objectContaining({ engine: null, loggedAt: lines[1]!.at, promptTokensPerSecond: 0, lastPrefillAt: lines[0]!.at, lastPrefillBurstTokens: null }),
    ]);
  });

  it.each([
    ['log-v0-stats.log', { running: 1, waiting: 0, kvCacheUsage: 0.001, promptTokensPerSecond: 13.2, generationTokensPerSecond: 13 }],
    ['log-v0.3-stats.log', { running: 2, waiting: 3, kvCacheUsage: 0.821, promptTokensPerSecond: 0, generationTokensPerSecond: 44.9 }],
  ])('V0 %s (captured): Pending is waiting, engine null; the prefix-cache line is no stats line', (name, figures) => {
    const text = read(name);
    const [line] = statsLines(text);
    const log = parseVllmLog(text, { now: NOW });
    expect(log.matchedLines).toBe(1);
    expect(log.stats).toEqual([expect.objectContaining({ engine: null, loggedAt: line!.at, ...figures })]);
    expect(figures).toMatchObject({ running: line!.running, waiting: line!.waiting, kvCacheUsage: line!.kv, promptTokensPerSecond: line!.prompt });
  });

  // The lines below are written from the V1 format string (frameworks.md 4.1), not captured.
  const v1 = (time: string, engine: number, prompt: number, generation: number, running = 1, waiting = 0, level = 'INFO') =>
    `(APIServer pid=7) ${level} 11-26 ${time} [loggers.py:123] Engine ${String(engine).padStart(3, '0')}: Avg prompt throughput: ${prompt.toFixed(1)} tokens/s, Avg generation throughput: ${generation.toFixed(1)} tokens/s, Running: ${running} reqs, Waiting: ${waiting} reqs, Preemptions: 0, GPU KV cache usage: 12.5%, Prefix cache hit rate: 40.0%`;
  const NOV = (h: number, m: number, s: number) => local(2026, 11, 26, h, m, s);
  const NOV_NOW = NOV(12, 0, 0);

  it('data parallel: each engine index its own latest line and burst ("001" -> "1")', () => {
    const log = parseVllmLog(
      [v1('10:00:00', 0, 0, 50), v1('10:00:00', 1, 0, 60), v1('10:00:10', 0, 300, 50), v1('10:00:10', 1, 0, 60), v1('10:00:20', 0, 0, 50), v1('10:00:20', 1, 700, 10)].join('\n'),
      { now: NOV_NOW },
    );
    expect(log.stats.map((s) => [s.engine, s.loggedAt, s.lastPrefillAt, s.lastPrefillBurstTokens])).toEqual([
      ['0', NOV(10, 0, 20), NOV(10, 0, 10), 3000],
      ['1', NOV(10, 0, 20), NOV(10, 0, 20), 7000],
    ]);
    expect(log.stats.map((s) => s.kvCacheUsage)).toEqual([0.125, 0.125]);
  });

  it(`at most ${MAX_STATS_ENGINES} engines are tracked; lines of more are not read`, () => {
    const log = parseVllmLog(Array.from({ length: MAX_STATS_ENGINES + 50 }, (_, i) => v1('10:00:00', i, 1, 1)).join('\n'), { now: NOV_NOW });
    expect(log.stats).toHaveLength(MAX_STATS_ENGINES);
    expect(log.matchedLines).toBe(MAX_STATS_ENGINES);
    expect(log.stats.at(-1)!.engine).toBe(String(MAX_STATS_ENGINES - 1));
  });

  it('idle then a burst: INFO hides the idle lines; the interval is the last one known, the idle time before the burst follows', () => {
    // Busy at 10:00:00, one idle line at 10:00:10 (vLLM logs that one at INFO), then only DEBUG
    // until requests come at 10:30:00: the 10:30:00 line's throughput is over 10 s, not 29 minutes,
    // and nothing moved from 10:00:00 to the start of that interval, 10:29:50.
    const hidden = [v1('10:00:00', 0, 0, 80), v1('10:00:10', 0, 0, 0, 0, 0), v1('10:30:00', 0, 500, 0, 4, 0)];
    const shown = [...hidden.slice(0, 2), v1('10:29:50', 0, 0, 0, 0, 0, 'DEBUG'), hidden[2]!];
    for (const lines of [hidden, shown]) {
      const log = parseVllmLog(lines.join('\n'), { now: NOV_NOW });
      expect(log.stats[0]).toMatchObject({ lastPrefillAt: NOV(10, 30, 0), lastPrefillBurstTokens: 5000, idleBeforeLastBurstSeconds: 30 * 60 - 10 });
    }
    // With no interval known yet, the burst's tokens and the idle time before it are not known.
    const unknown = parseVllmLog([v1('10:00:10', 0, 0, 0, 0, 0), v1('10:30:00', 0, 500, 0)].join('\n'), { now: NOV_NOW });
    expect(unknown.stats[0]).toMatchObject({ lastPrefillAt: NOV(10, 30, 0), lastPrefillBurstTokens: null, idleBeforeLastBurstSeconds: null });
  });

  it('the year: the latest such moment not after the time of reading', () => {
    const at = (stamp: string, now: number) => parseVllmLog(`INFO ${stamp} [metrics.py:1] Avg prompt throughput: 0.0 tokens/s, Avg generation throughput: 1.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs`, { now }).stats[0]!.loggedAt;
    expect(at('12-31 23:59:59', local(2027, 1, 1, 0, 0, 10))).toBe(local(2026, 12, 31, 23, 59, 59));
    expect(at('01-01 00:00:05', local(2027, 1, 1, 0, 0, 10))).toBe(local(2027, 1, 1, 0, 0, 5));
    // Ahead of the reader's clock: last year's.
    expect(at('06-02 00:00:00', NOW)).toBe(local(2025, 6, 2, 0, 0, 0));
    expect(at('02-29 12:00:00', local(2027, 3, 1, 0, 0, 0))).toBe(local(2024, 2, 29, 12, 0, 0));
    expect(at('02-30 12:00:00', NOW)).toBeNull();
    expect(at('13-01 12:00:00', NOW)).toBeNull();
    expect(at('05-01 24:00:00', NOW)).toBeNull();
    expect(parseVllmLog('Avg prompt throughput: 1.0 tokens/s, Avg generation throughput: 1.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs').stats[0]!.loggedAt).toBeNull();
  });

  it('colour codes and pid tags around a stats line; lines that only look like one are not', () => {
    const log = parseVllmLog(
      [
        `(APIServer pid=7) \u001b[32mINFO\u001b[0m 11-26 10:00:00 [loggers.py:123] Engine 000: Avg prompt throughput: 5.0 tokens/s, Avg generation throughput: 0.0 tokens/s, Running: 1 reqs, Waiting: 2 reqs, GPU KV cache usage: 1.0%, Prefix cache hit rate: 0.0%`,
        'INFO 11-26 10:10:00 [loggers.py:123] Engine 000: Avg prompt throughput: 812.4 tokens/s, Running: 18 reqs',
        'INFO 11-26 10:10:00 [loggers.py:123] Engine 000: Avg prompt throughput: nan tokens/s, Avg generation throughput: 1.0 tokens/s, Running: 1 reqs, Waiting: 0 reqs',
        'INFO 11-26 10:10:00 [metrics.py:502] Prefix cache hit rate: GPU: 0.00%, CPU: 0.00%',
      ].join('\n'),
      { now: NOV_NOW },
    );
    expect(log.matchedLines).toBe(1);
    expect(log.byPid.size).toBe(0);
    expect(log.stats).toEqual([expect.objectContaining({ engine: '0', loggedAt: NOV(10, 0, 0), promptTokensPerSecond: 5, waiting: 2, kvCacheUsage: 0.01 })]);
  });

  it('a log of stats lines alone is a vLLM log; the follower carries a burst across reads', async () => {
    const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-vllm-stats-'));
    try {
      const file = path.join(work, 'vllm.log');
      const lines = [v1('10:00:00', 0, 0, 80), v1('10:00:10', 0, 200, 80), v1('10:00:20', 0, 300, 80), v1('10:00:30', 0, 0, 80)];
      writeFileSync(file, `${lines.slice(0, 2).join('\n')}\n${lines[2]!.slice(0, 40)}`);
      const follower = new VllmLogFollower(file);
      const first = await follower.read(NOV_NOW);
      expect(first.matchedLines).toBe(2);
      expect(first.stats[0]).toMatchObject({ lastPrefillBurstTokens: 2000 });
      appendFileSync(file, `${lines[2]!.slice(40)}\n${lines[3]}\n`);
      const second = await follower.read(NOV_NOW);
      expect(second).toEqual(parseVllmLog(`${lines.join('\n')}\n`, { now: NOV_NOW }));
      expect(second.stats[0]).toMatchObject({ lastPrefillAt: NOV(10, 0, 20), lastPrefillBurstTokens: 5000, idleBeforeLastBurstSeconds: 0, promptTokensPerSecond: 0 });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });
});
