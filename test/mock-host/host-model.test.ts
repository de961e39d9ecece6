/**
 * The host model behind the evaluation set: what it draws is what `record` writes (every sample
 * valid for the layered schema, the recording for its reader), the same seed draws the same host,
 * a host recorded less often is the same host with fewer samples, and a label names the process
 * that was running at the hour it asks for.
 */
import { describe, expect, it } from 'vitest';

import { layeredSampleSchema } from '../../src/layers/schema.js';
import { EVALUATION_SET, evaluationRecording } from '../../src/mock-host/evaluation-set.js';
import { modelRecording, resampled } from '../../src/mock-host/host-model.js';
import { parseRecording } from '../../src/recording/read-recording.js';

const named = (name: string) => EVALUATION_SET.find((c) => c.name === name)!;

describe('the host model', () => {
  it('draws samples a recording holds, for every case of the evaluation set', () => {
    for (const testCase of EVALUATION_SET) {
      const recording = evaluationRecording(testCase);
      expect(recording.samples.length, testCase.name).toBeGreaterThan(100);
      for (const i of [0, recording.samples.length >> 1, recording.samples.length - 1]) {
        expect(layeredSampleSchema.safeParse(recording.samples[i]).success, `${testCase.name} sample ${i}`).toBe(true);
      }
    }
    const small = evaluationRecording(named('lazy-init-60s'));
    const text = [JSON.stringify(small.header), ...small.samples.map((s) => JSON.stringify(s))].join('\n') + '\n';
    expect(parseRecording(text, 'model.jsonl').samples).toHaveLength(small.samples.length);
  });

  it('draws the same host from the same seed, and another from another', () => {
    const spec = named('creep-steady-5s').spec;
    const a = modelRecording(spec).samples.slice(0, 200);
    expect(JSON.stringify(modelRecording(spec).samples.slice(0, 200))).toBe(JSON.stringify(a));
    expect(JSON.stringify(modelRecording({ ...spec, seed: spec.seed + 1 }).samples.slice(0, 200))).not.toBe(JSON.stringify(a));
  });

  it('recorded every 60 s, the same host has every twelfth sample of the 5 s recording', () => {
    const fine = evaluationRecording(named('heap-leak-5s'));
    const coarse = resampled(fine, 12);
    expect(coarse.header.intervalMs).toBe(60_000);
    expect(coarse.samples.length).toBe(Math.floor((fine.samples.length - 1) / 12) + 1);
    expect(coarse.samples[3]).toEqual(fine.samples[36]);
  });

  it('recorded less often, a process gone between two kept samples is told in the next kept one, last seen at the one before', () => {
    const fine = evaluationRecording(named('oom-kill-after-heap-leak-10s'));
    const killed = fine.samples.findIndex((s) => (s.exits ?? []).length > 0);
    expect(killed).toBeGreaterThan(0);
    const exit = fine.samples[killed]!.exits![0]!;
    expect(exit.oomKillsAfter).toBe(exit.oomKillsBefore! + 1);
    const coarse = resampled(fine, 6);
    const told = coarse.samples.filter((s) => (s.exits ?? []).length > 0);
    expect(told).toHaveLength(1);
    const at = coarse.samples.indexOf(told[0]!);
    expect(told[0]!.exits).toEqual([{ ...exit, lastSeenAt: coarse.samples[at - 1]!.takenAt }]);
    expect(Date.parse(told[0]!.takenAt)).toBeGreaterThanOrEqual(Date.parse(fine.samples[killed]!.takenAt));
  });

  it('a restart makes a new process, and a label names the one running at its hour', () => {
    const recording = evaluationRecording(named('restart-same-figures-15s'));
    const before = recording.subjectAt('a', 1)!;
    const after = recording.subjectAt('a', 9)!;
    expect(before.pid).not.toBe(after.pid);
    const pidsSeen = new Set(recording.samples.flatMap((s) => (s.devices[0]!.processes ?? []).map((p) => p.pid)));
    expect([...pidsSeen].sort()).toEqual([before.pid, recording.subjectAt('a', 5)!.pid, after.pid].sort());
  });

  it('a worker is listed from its CUDA initialisation on, and starts small', () => {
    const recording = evaluationRecording(named('warm-up-then-flat-5s'));
    const first = recording.samples.findIndex((s) => (s.devices[0]!.processes ?? []).length > 0);
    const startBytes = recording.samples[first]!.devices[0]!.processes![0]!.layers.driverBytes!;
    const laterBytes = recording.samples.at(-1)!.devices[0]!.processes![0]!.layers.driverBytes!;
    expect(first).toBeGreaterThan(0);
    expect(startBytes).toBeLessThan(2 * 2 ** 30);
    expect(laterBytes).toBeGreaterThan(60 * 2 ** 30);
  });
});
