/**
 * Without /metrics, vLLM's periodic stats log lines give the load: the latest line, when it is
 * fresh, fills requests running and waiting, KV usage and the load (source "log"); a line older
 * than a minute says nothing of now, and the reason says why (vLLM V1 logs them at INFO only
 * while busy).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { readFramework } from '../../src/layers/read-framework.js';

const PID = 4242;
let work: string;
let proc: string;

/** vLLM's timestamp for `ms`: month-day and time of day in this host's local time, no year. */
function vllmTime(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
}

function statsLine(ms: number, prompt: number, generation: number, running: number, waiting: number, usagePercent: number): string {
  return `INFO ${vllmTime(ms)} [loggers.py:123] Engine 000: Avg prompt throughput: ${prompt.toFixed(1)} tokens/s, Avg generation throughput: ${generation.toFixed(1)} tokens/s, Running: ${running} reqs, Waiting: ${waiting} reqs, GPU KV cache usage: ${usagePercent.toFixed(1)}%, Prefix cache hit rate: 0.0%`;
}

beforeAll(() => {
  work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-log-load-'));
  proc = path.join(work, 'proc');
  mkdirSync(path.join(proc, String(PID)), { recursive: true });
  writeFileSync(path.join(proc, String(PID), 'cmdline'), 'vllm\0serve\0meta-llama/Llama-3.1-8B-Instruct\0');
  writeFileSync(path.join(proc, String(PID), 'stat'), `${PID} (vllm) S 1 ${PID} ${PID} 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 5000 0 0\n`);
});
afterAll(() => rmSync(work, { recursive: true, force: true }));

async function frameworkWith(lines: string[]) {
  const log = path.join(work, `vllm-${Math.random().toString(16).slice(2)}.log`);
  writeFileSync(log, `${lines.join('\n')}\n`);
  const reading = await readFramework([PID], { vllmLog: log }, proc);
  return reading.results.get(PID)!;
}

describe('the load from the log', () => {
  it('a fresh stats line gives running, waiting, KV usage and the load', async () => {
    const now = Date.now();
    const result = await frameworkWith([statsLine(now - 15_000, 0, 0, 0, 0, 0), statsLine(now - 5_000, 812.5, 96.0, 3, 1, 42.5)]);
    expect(result.layer).not.toBeNull();
    const layer = result.layer!;
    expect(layer.requestsRunning).toBe(3);
    expect(layer.requestsWaiting).toBe(1);
    expect(layer.kvCacheUsage).toBeCloseTo(0.425, 6);
    expect(layer.load).toMatchObject({ source: 'log', promptTokensPerSecond: 812.5, generationTokensPerSecond: 96, requestsFinishedPerSecond: null, phase: 'prefill-heavy' });
    // The log has no counters.
    expect(layer.counters).toBeNull();
  });

  it('a stats line older than a minute gives no load, and says why', async () => {
    const old = Date.now() - 10 * 60_000;
    const result = await frameworkWith([statsLine(old, 100, 50, 2, 0, 10)]);
    const layer = result.layer!;
    expect(layer.load).toBeNull();
    expect(layer.requestsRunning).toBeNull();
    if (result.layer === null) throw new Error('no layer');
    expect(result.errors['layers.framework.load']?.code).toBe('LOG_STATS_STALE');
  });
});
