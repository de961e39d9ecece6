/**
 * The comparison of one run under load with its reference, on hand-made completions: the same
 * sequence; a change at a near-tie (noise, with its margin); a change where the reference led by
 * a wide margin (mismatch); a near-tie followed by a loop or by nothing (mismatch, degenerate);
 * no logprobs (unjudged, compared by text); and the verdict over prompts.
 */
import { describe, expect, it } from 'vitest';

import type { CanaryPromptResult } from '../../src/canary/canary-schema.js';
import { checksumOf, compareRun, isLoop, marginAt } from '../../src/canary/compare-runs.js';
import type { Completion, CompletionPosition } from '../../src/canary/completion.js';
import { isNearTie, NEAR_TIE_MARGIN_NATS } from '../../src/canary/near-tie.js';
import { judgeCanary, promptOutcome } from '../../src/canary/verdict.js';

const judgement = { nearTieMarginNats: NEAR_TIE_MARGIN_NATS, batchInvariant: false };

/** A position where `token` leads `runnerUp` by `margin` nats. */
function at(token: string, runnerUp: string, margin: number): CompletionPosition {
  return { token, logprob: -0.1, top: [{ token, logprob: -0.1 }, { token: runnerUp, logprob: -0.1 - margin }, { token: ' zz', logprob: -9 }] };
}

function completion(positions: CompletionPosition[], finishReason = 'length'): Completion {
  return { text: positions.map((p) => p.token).join(''), positions, finishReason };
}

const sure = (token: string): CompletionPosition => at(token, ' other', 4);
const reference = completion([sure(' the'), sure(' cat'), at(' big', ' large', 0.05), sure(' dog'), sure(' ran'), sure(' home'), sure(' again')]);

describe('compareRun', () => {
  it('the same sequence is the same, with the reference checksum', () => {
    const run = compareRun(reference, completion([...reference.positions!]), judgement);
    expect(run).toEqual({ checksum: checksumOf(reference), outcome: 'same', reason: null, divergence: null });
    expect(run.checksum).toMatch(/^sha256-tokens:[0-9a-f]{64}$/);
  });

  it('a change at a near-tie is noise, with the position, the margin and the runner-up', () => {
    const loaded = completion([sure(' the'), sure(' cat'), at(' large', ' big', 0.02), sure(' bird'), sure(' flew'), sure(' over'), sure(' it')]);
    const run = compareRun(reference, loaded, judgement);
    expect(run.outcome).toBe('noise');
    expect(run.divergence).toMatchObject({ position: 2, unit: 'token', referenceToken: ' big', loadedToken: ' large', runnerUp: ' large', degenerate: null });
    expect(run.divergence!.marginNats).toBeCloseTo(0.05, 10);
    expect(run.divergence!.loadedMarginNats).toBeCloseTo(0.02, 10);
    expect(run.divergence!.context).toBe(' the cat');
    expect(run.divergence!.reference).toBe(' big dog ran home again');
    expect(run.divergence!.loaded).toBe(' large bird flew over it');
  });

  it('a change where the reference token led by a wide margin is a mismatch', () => {
    const loaded = completion([sure(' the'), sure(' fish'), sure(' sat'), sure(' on'), sure(' a'), sure(' mat'), sure(' today')]);
    const run = compareRun(reference, loaded, judgement);
    expect(run.outcome).toBe('mismatch');
    expect(run.reason).toBe('wide-margin');
    expect(run.divergence).toMatchObject({ position: 1, referenceToken: ' cat', loadedToken: ' fish' });
    expect(run.divergence!.marginNats).toBeCloseTo(4, 10);
  });

  it('the threshold is the boundary: a margin just below it is noise, at it a mismatch', () => {
    const exactly = (margin: number): CompletionPosition => ({ token: ' cat', logprob: 0, top: [{ token: ' cat', logprob: 0 }, { token: ' dog', logprob: -margin }] });
    const below = completion([sure(' the'), exactly(NEAR_TIE_MARGIN_NATS - 1e-9)]);
    const atThreshold = completion([sure(' the'), exactly(NEAR_TIE_MARGIN_NATS)]);
    const loaded = completion([sure(' the'), sure(' dog')]);
    expect(compareRun(below, loaded, judgement).outcome).toBe('noise');
    expect(compareRun(atThreshold, loaded, judgement).outcome).toBe('mismatch');
    expect(isNearTie(NEAR_TIE_MARGIN_NATS - 1e-9)).toBe(true);
    expect(isNearTie(NEAR_TIE_MARGIN_NATS)).toBe(false);
  });

  it('a near-tie followed by a loop is a mismatch (degenerate); the same loop in the reference is not held against the run', () => {
    const tail = Array.from({ length: 16 }, () => sure(' on'));
    const loaded = completion([sure(' the'), sure(' cat'), at(' large', ' big', 0.01), ...tail]);
    const run = compareRun(reference, loaded, judgement);
    expect(run.outcome).toBe('mismatch');
    expect(run.reason).toBe('degenerate');
    expect(run.divergence!.degenerate).toBe('repetition');

    const loopingReference = completion([sure(' the'), at(' big', ' large', 0.05), ...tail]);
    const loopingRun = completion([sure(' the'), at(' large', ' big', 0.05), ...tail]);
    expect(compareRun(loopingReference, loopingRun, judgement).outcome).toBe('noise');
  });

  it('a run that has nothing more to say after the divergence is degenerate; one that stops cleanly after saying something is judged by its margin', () => {
    const blank = completion([sure(' the'), sure(' cat'), at(' ', ' big', 0.01), sure(' '), sure(' ')]);
    expect(compareRun(reference, blank, judgement)).toMatchObject({ outcome: 'mismatch', reason: 'degenerate' });
    expect(compareRun(reference, blank, judgement).divergence!.degenerate).toBe('empty');
    const stopped = completion([sure(' the'), sure(' cat')], 'stop');
    const run = compareRun(reference, stopped, judgement);
    expect(run.outcome).toBe('noise');
    expect(run.divergence).toMatchObject({ position: 2, loadedToken: null, degenerate: null });
    const nothing: Completion = { text: '', positions: [], finishReason: 'stop' };
    expect(compareRun(reference, nothing, judgement).divergence!.degenerate).toBe('empty');
  });

  it('without logprobs the text is compared by character and the margin is unknown (unjudged)', () => {
    const plain: Completion = { text: ' the cat big dog', positions: null, finishReason: 'length' };
    const other: Completion = { text: ' the cat sat down', positions: null, finishReason: 'length' };
    const run = compareRun(plain, other, judgement);
    expect(run.outcome).toBe('unjudged');
    expect(run.divergence).toMatchObject({ unit: 'char', position: 9, marginNats: null, referenceToken: 'b', loadedToken: 's' });
    expect(run.checksum).toMatch(/^sha256-text:/);
    // Logprobs on one side only: still by text.
    expect(compareRun(reference, { text: reference.text, positions: null, finishReason: 'length' }, judgement).outcome).toBe('same');
  });

  it('on a batch-invariant server every divergence is a mismatch', () => {
    const loaded = completion([sure(' the'), sure(' cat'), at(' large', ' big', 0.02), sure(' bird')]);
    expect(compareRun(reference, loaded, { ...judgement, batchInvariant: true })).toMatchObject({ outcome: 'mismatch', reason: 'batch-invariant' });
  });

  it('the margin needs a runner-up and the chosen token\'s logprob', () => {
    expect(marginAt({ token: 'a', logprob: -0.1, top: [{ token: 'a', logprob: -0.1 }] })).toBeNull();
    expect(marginAt({ token: 'a', logprob: -0.1, top: null })).toBeNull();
    expect(marginAt({ token: 'a', logprob: null, top: [{ token: 'b', logprob: -2 }] })).toBeNull();
    expect(marginAt({ token: 'a', logprob: -0.5, top: [{ token: 'b', logprob: -2 }] })).toEqual({ marginNats: 1.5, runnerUp: 'b' });
  });

  it('a loop is a short period filling the tail', () => {
    expect(isLoop(Array.from({ length: 12 }, () => 'x'))).toBe(true);
    expect(isLoop(Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? 'a' : i % 3 === 1 ? 'b' : 'c')))).toBe(true);
    expect(isLoop(Array.from({ length: 11 }, () => 'x'))).toBe(false);
    expect(isLoop(' one two three four five six seven eight nine ten eleven twelve thirteen'.split(' '))).toBe(false);
  });
});

function promptWith(id: string, runs: CanaryPromptResult['runs']): CanaryPromptResult {
  return { id, prompt: id, reference: { checksum: 'sha256-tokens:x', tokens: 4, finishReason: 'length' }, runs, outcome: promptOutcome(runs) };
}

const context = { endpoint: 'http://h/v1', model: 'm', startedAt: '2026-01-01T00:00:00.000Z', finishedAt: '2026-01-01T00:01:00.000Z', nearTieMarginNats: 0.5, batchInvariant: false };

describe('judgeCanary', () => {
  const d = (margin: number | null) => ({ position: 3, unit: 'token' as const, referenceToken: 'a', loadedToken: 'b', marginNats: margin, runnerUp: 'b', loadedMarginNats: null, degenerate: null, context: '', reference: 'a', loaded: 'b' });

  it('noise alone is no finding', () => {
    const result = judgeCanary([promptWith('p', [{ run: 0, checksum: 'c', outcome: 'noise', reason: null, divergence: d(0.1) }])], context);
    expect(result).toMatchObject({ verdict: 'noise', findings: [], counts: { noise: 1 } });
  });

  it('a wide margin is a critical scheduler-state-mismatch, surer the wider, with its divergences', () => {
    const at = (margin: number) => judgeCanary([promptWith('p', [{ run: 0, checksum: 'c', outcome: 'mismatch', reason: 'wide-margin', divergence: d(margin) }])], context);
    const narrow = at(0.6);
    const wide = at(5);
    expect(narrow.verdict).toBe('mismatch');
    expect(narrow.findings).toHaveLength(1);
    expect(narrow.findings[0]).toMatchObject({ id: 'scheduler-state-mismatch', severity: 'critical', subject: { endpoint: 'http://h/v1', model: 'm' } });
    expect(narrow.findings[0]!.divergences[0]).toMatchObject({ promptId: 'p', run: 0, position: 3, marginNats: 0.6 });
    expect(wide.findings[0]!.confidence).toBeGreaterThan(narrow.findings[0]!.confidence);
  });

  it('unknown margins are a warning of low confidence; no run under load is inconclusive', () => {
    const result = judgeCanary([promptWith('p', [{ run: 0, checksum: 'c', outcome: 'unjudged', reason: null, divergence: d(null) }])], context);
    expect(result.verdict).toBe('unjudged');
    expect(result.findings[0]).toMatchObject({ severity: 'warning' });
    expect(result.findings[0]!.confidence).toBeLessThanOrEqual(0.5);
    expect(judgeCanary([promptWith('p', [])], context).verdict).toBe('inconclusive');
  });
});
