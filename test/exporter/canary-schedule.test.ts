/**
 * The canary on the exporter's schedule against the fake OpenAI-compatible server: a run's
 * result lands in the canary families (success, divergences by kind, a finding series while a
 * mismatch stands, requests sent), a failed run sets success to 0 and keeps the last findings,
 * and a schedule more often than every ten minutes is refused.
 */
import { describe, expect, it } from 'vitest';

import type { CanaryResult } from '../../src/canary/canary-schema.js';
import { CanarySchedule, MIN_EVERY_MS } from '../../src/exporter/canary-schedule.js';
import { createExporterMetrics, type ExporterMetrics } from '../../src/exporter/exporter-metrics.js';
import { QUICK, TOY_MODEL, withServer } from '../helpers/canary.js';

/** The schedule's first run (after `firstRunDelayMs` 0), then stopped. */
async function oneRun(metrics: ExporterMetrics, url: string): Promise<{ result: CanaryResult | null; error: unknown }> {
  let resolve!: (value: { result: CanaryResult | null; error: unknown }) => void;
  const done = new Promise<{ result: CanaryResult | null; error: unknown }>((r) => (resolve = r));
  const schedule = new CanarySchedule(metrics, {
    canary: { ...QUICK, url, model: TOY_MODEL },
    everyMs: MIN_EVERY_MS,
    firstRunDelayMs: 0,
    onResult: (result) => resolve({ result, error: null }),
    onError: (error) => resolve({ result: null, error }),
  });
  schedule.start();
  const outcome = await done;
  await schedule.stop();
  return outcome;
}

function value(text: string, family: string, extra = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${family}{`) && l.includes(extra));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

describe('CanarySchedule', () => {
  it('puts a mismatch run, then a failed run, in the canary families', { timeout: 60_000 }, async () => {
    const metrics = createExporterMetrics();
    await withServer({ engine: 'wrong-sequence-state' }, async (server) => {
      const { result } = await oneRun(metrics, server.url);
      expect(result!.verdict).toBe('mismatch');
      const text = await metrics.registry.metrics();
      expect(value(text, 'gpu_layers_canary_success')).toBe(1);
      expect(value(text, 'gpu_layers_canary_divergences', 'kind="mismatch"')).toBe(result!.counts.mismatch);
      expect(value(text, 'gpu_layers_canary_divergences', 'kind="noise"')).toBe(result!.counts.noise);
      expect(value(text, 'gpu_layers_canary_finding', 'severity="critical"')).toBe(1);
      expect(value(text, 'gpu_layers_canary_requests_total')).toBe(result!.load.requestsSent);
      // The endpoint label is the API base the canary reports, the same in every family.
      expect(text).toContain(`endpoint="${result!.endpoint}"`);
    });
    await withServer({ engine: 'exact', misbehave: { kind: 'status-500' } }, async (server) => {
      const { error } = await oneRun(metrics, server.url);
      expect(error).toBeDefined();
    });
    const text = await metrics.registry.metrics();
    // The failed run is another server's (another port): its series says 0, the first's finding stays.
    expect(text.split('\n').filter((l) => l.startsWith('gpu_layers_canary_success{')).map((l) => Number(l.slice(l.lastIndexOf(' ') + 1))).sort()).toEqual([0, 1]);
    expect(value(text, 'gpu_layers_canary_finding', 'severity="critical"')).toBe(1);
  });

  it('a consistent engine clears the finding series', { timeout: 60_000 }, async () => {
    const metrics = createExporterMetrics();
    await withServer({ engine: 'exact' }, async (server) => {
      const { result } = await oneRun(metrics, server.url);
      expect(result!.verdict).toBe('consistent');
    });
    expect(value(await metrics.registry.metrics(), 'gpu_layers_canary_finding')).toBeUndefined();
  });

  it('refuses to run more often than every ten minutes, and a URL the canary would refuse, before anything runs', () => {
    const metrics = createExporterMetrics();
    expect(() => new CanarySchedule(metrics, { canary: { url: 'http://127.0.0.1:8000', model: 'm' }, everyMs: 60_000 })).toThrow(/at most every 10 minutes/);
    expect(() => new CanarySchedule(metrics, { canary: { url: 'ftp://host/', model: 'm' }, everyMs: MIN_EVERY_MS })).toThrow(/http/);
  });
});
