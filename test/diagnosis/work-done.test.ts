/**
 * The work a server did, from vLLM's counters in a history: increases across restarts, idleness
 * by the write-up's measure (a trickle is idle, long generations are not), and what a growth
 * finding says of the work (bytes per request and per 1k tokens, with the work or with time).
 */
import { describe, expect, it } from 'vitest';

import { HistoryBuilder, type ProcessHistory } from '../../src/diagnosis/process-history.js';
import { idleness, increaseOver, workOver } from '../../src/diagnosis/work-done.js';
import { counterIncrease } from '../../src/layers/request-load.js';
import { requestsFinished } from '../../src/diagnosis/fields.js';
import { workNote } from '../../src/diagnosis/work-note.js';
import { formatBytes } from '../../src/format-bytes.js';

const T0 = Date.UTC(2026, 11, 7, 2, 0, 0);
const MiB = 2 ** 20;

interface Reading {
  driver?: number;
  running: number;
  waiting?: number;
  finished: number | null;
  tokens?: number;
}

/** One process's history from readings `stepS` seconds apart, as recorded samples. */
function historyOf(readings: Reading[], stepS: number): ProcessHistory {
  const builder = new HistoryBuilder();
  readings.forEach((r, i) => {
    builder.add({
      takenAt: new Date(T0 + i * stepS * 1000).toISOString(),
      devices: [
        {
          index: 0,
          uuid: 'GPU-0',
          memory: { totalBytes: 80 * 1024 * MiB, freeBytes: 10 * 1024 * MiB },
          processes: [
            {
              pid: 7,
              layers: {
                driverBytes: r.driver ?? 40 * 1024 * MiB,
                allocator: null,
                framework: {
                  requestsRunning: r.running,
                  requestsWaiting: r.waiting ?? 0,
                  counters: r.finished === null ? null : { requestsFinished: r.finished, promptTokens: r.tokens ?? 0, generationTokens: 0 },
                },
              },
              gaps: {},
              host: null,
            },
          ],
        },
      ],
    });
  });
  return builder.histories()[0]!;
}

describe('counters', () => {
  it('an increase across a restart counts the new value, as rate() does', () => {
    expect(counterIncrease(100, 150)).toBe(50);
    expect(counterIncrease(150, 20)).toBe(20);
    const history = historyOf([100, 150, 20, 50].map((finished) => ({ running: 0, finished })), 60);
    expect(increaseOver(history, requestsFinished, T0, T0 + 3 * 60_000)).toBe(50 + 20 + 30);
    expect(increaseOver(history, requestsFinished, T0, T0)).toBeNull();
  });
});

describe('idleness', () => {
  // A request every three minutes (0.0056/s) that runs for ten seconds, sampled every 5 s.
  const trickle = Array.from({ length: 12 * 60 }, (_, i): Reading => ({ running: i % 36 < 2 ? 1 : 0, finished: Math.floor(i / 36) }));

  it('a trickle under 0.01 requests a second is idle at every reading once the window can judge, a running request included', () => {
    const idle = idleness(historyOf(trickle, 5));
    // From five minutes on (a third of the trailing window), each reading is judged on the rate.
    const judged = idle.slice(60);
    expect(judged.every((v) => v === true)).toBe(true);
    // Before that, readings with a request running are not idle by the reading alone.
    expect(idle.slice(0, 60).some((v) => v === false)).toBe(true);
  });

  it('a request finishing every second is busy whenever one runs', () => {
    const busy = Array.from({ length: 720 }, (_, i): Reading => ({ running: 4, finished: i * 5 }));
    expect(idleness(historyOf(busy, 5)).every((v) => v === false)).toBe(true);
  });

  it('long generations that finish nothing for minutes are not idle', () => {
    const long = Array.from({ length: 720 }, (): Reading => ({ running: 3, finished: 0 }));
    expect(idleness(historyOf(long, 5)).every((v) => v === false)).toBe(true);
  });

  it('without counters a reading is idle only when nothing runs or waits then', () => {
    const readings = trickle.map((r) => ({ ...r, finished: null }));
    const idle = idleness(historyOf(readings, 5));
    expect(idle.every((v, i) => v === (readings[i]!.running === 0))).toBe(true);
  });
});

describe('workNote', () => {
  const hour = 3_600_000;
  const growing = (perRequest: boolean, firstHalfRate: number, secondHalfRate: number) => {
    // Two hours at 1-minute readings; growth per request, or 100 MiB an hour whatever the load.
    let finished = 0;
    let bytes = 40 * 1024 * MiB;
    return Array.from({ length: 121 }, (_, i): Reading => {
      if (i > 0) {
        const rate = i <= 60 ? firstHalfRate : secondHalfRate;
        finished += rate;
        bytes += perRequest ? rate * 64 * 1024 : (100 * MiB) / 60;
      }
      return { running: 2, finished, tokens: finished * 1000, driver: Math.round(bytes) };
    });
  };
  const noteOf = (readings: Reading[]) => {
    const history = historyOf(readings, 60);
    const series = history.points.map((p) => ({ t: p.t, v: p.process.layers.driverBytes! }));
    const rise = { from: T0, to: T0 + 2 * hour, rise: series.at(-1)!.v - series[0]!.v };
    return { note: workNote(history, rise, series), work: workOver(history, rise.from, rise.to), rise: rise.rise };
  };

  it('states bytes per finished request and per 1k tokens', () => {
    const { note, work, rise } = noteOf(growing(true, 10, 10));
    expect(work).toEqual({ requests: 1200, tokens: 1200 * 1000 });
    // 64 KiB a request by construction; a thousand tokens a request.
    expect(rise).toBe(1200 * 64 * 1024);
    expect(note).toContain(`${formatBytes(64 * 1024)} per finished request and ${formatBytes(64 * 1024)} per 1k tokens (1200 requests, 1.2M tokens)`);
  });

  it('growth that follows the requests is in step with the work; growth that follows the clock is not', () => {
    expect(noteOf(growing(true, 4, 20)).note).toContain('in step with the work');
    expect(noteOf(growing(false, 4, 20)).note).toContain('with time rather than the work');
    // The same rate in both halves cannot tell the two apart.
    expect(noteOf(growing(false, 10, 10)).note).not.toMatch(/in step|with time/);
  });

  it('growth with no request finished says so, and unknown counters say nothing', () => {
    expect(noteOf(growing(false, 0, 0)).note).toBe('; no request finished meanwhile: it grew without work');
    const unknown = growing(false, 5, 5).map((r) => ({ ...r, finished: null }));
    expect(noteOf(unknown).note).toBe('');
  });
});
