/**
 * The diagnosis on its evaluation set (src/mock-host/evaluation-set.ts: hosts drawn from a model
 * of a vLLM host, written before the rules were changed for them): every labelled finding on its
 * process, nothing on the look-alikes, the same findings when the same host is recorded every
 * 60 s instead of every 5-30 s, and, with the allocator layer unknown, a finding that says what
 * is unknown rather than a sentence claiming it did not grow.
 */
import { describe, expect, it } from 'vitest';

import { unmeasuredLayers } from '../../src/diagnosis/coverage.js';
import { diagnose } from '../../src/diagnosis/diagnose.js';
import { EVALUATION_SET, evaluationRecording, scoreFindings } from '../../src/mock-host/evaluation-set.js';
import { resampled } from '../../src/mock-host/host-model.js';
import { processHistories } from '../../src/diagnosis/process-history.js';

const named = (name: string) => EVALUATION_SET.find((c) => c.name === name)!;
const keys = (findings: ReturnType<typeof diagnose>) => findings.map((f) => `${f.id}/${f.subject.deviceIndex}/${f.subject.pid}`).sort();

describe('the evaluation set', () => {
  it.each(EVALUATION_SET.map((c) => [c.name, c] as const))('%s', (_, testCase) => {
    const recording = evaluationRecording(testCase);
    const score = scoreFindings(testCase, recording, diagnose(recording.samples));
    expect({ missed: score.missed, falseFindings: score.falseFindings }).toEqual({ missed: [], falseFindings: [] });
  });

  it('has at least as many look-alikes as pattern cases', () => {
    expect(EVALUATION_SET.filter((c) => c.kind === 'look-alike').length).toBeGreaterThanOrEqual(EVALUATION_SET.filter((c) => c.kind === 'pattern').length);
  });
});

describe('the sampling interval does not change the answer', () => {
  it.each(['creep-steady-5s', 'creep-smooth-5s', 'heap-leak-with-churn-5s', 'rss-driver-mapped-5s', 'lazy-init-5s', 'tensor-leak-10s', 'empty-cache-sawtooth-5s', 'noisy-flat-5s', 'warm-up-then-flat-5s'])(
    '%s recorded every 60 s',
    (name) => {
      const fine = evaluationRecording(named(name));
      const factor = 60 / named(name).spec.intervalSeconds;
      expect(keys(diagnose(resampled(fine, factor).samples))).toEqual(keys(diagnose(fine.samples)));
    },
  );
});

describe('without the companion', () => {
  it('driver growth is a finding that says which layer is unknown and how to split it', () => {
    const recording = evaluationRecording(named('driver-only-creep-10s'));
    const [finding, ...rest] = diagnose(recording.samples);
    expect(rest).toEqual([]);
    expect(finding!.id).toBe('device-memory-growth');
    expect(finding!.summary).toMatch(/allocator layer was not measured/);
    expect(finding!.summary).not.toMatch(/stayed|flat/);
    expect(finding!.fix).toMatch(/gpu-layers companion/);
  });

  it('a flat driver layer gives no finding, and the layers not measured are named', () => {
    const recording = evaluationRecording(named('driver-only-flat-10s'));
    expect(diagnose(recording.samples)).toEqual([]);
    expect(unmeasuredLayers(processHistories(recording.samples))).toEqual([{ layer: 'allocator', pids: [recording.subjectAt('a', 1)!.pid] }]);
  });
});

describe('the load against a tensor leak', () => {
  it('a load that does not move explains none of the growth: a leak under a constant batch is found', () => {
    const recording = evaluationRecording(named('tensor-leak-10s'));
    const steady = structuredClone(recording.samples);
    for (const p of steady.flatMap((s) => s.devices.flatMap((d) => d.processes ?? []))) {
      if (p.layers.framework !== null) p.layers.framework = { ...p.layers.framework, requestsRunning: 64, requestsWaiting: 0 };
    }
    const findings = diagnose(steady).filter((f) => f.id === 'gpu-tensor-leak');
    expect(findings).toHaveLength(1);
    expect(findings[0]!.summary).toMatch(/beyond what the requests running explain/);
  });
});

describe('the thresholds table', () => {
  it('docs/diagnosis.md gives every threshold of the code with its reason', async () => {
    const { readFileSync } = await import('node:fs');
    const { THRESHOLDS } = await import('../../src/diagnosis/thresholds.js');
    const { repoRoot } = await import('../helpers/paths.js');
    const doc = readFileSync(`${repoRoot}/docs/diagnosis.md`, 'utf8');
    expect(Object.keys(THRESHOLDS).filter((key) => !doc.includes(`\`${key}\``))).toEqual([]);
  });
});
