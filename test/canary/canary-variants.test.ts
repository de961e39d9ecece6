/**
 * The canary against the three engines of the fake server (issue 17): A hands a sequence another
 * sequence's state when batched and must be caught (a scheduler-state-mismatch with the position
 * and a wide margin); B flips near-ties under batching and must pass, with the noise and its
 * margins shown; C is exact and must pass clean. The verdicts come from the runs, not the
 * engines' names: the same canary gives three verdicts, near-ties stop being forgiven on a
 * batch-invariant server, and a threshold above every margin turns A's finding into noise.
 */
import { describe, expect, it } from 'vitest';

import { canaryResultSchema } from '../../src/canary/canary-schema.js';
import { NEAR_TIE_MARGIN_NATS } from '../../src/canary/near-tie.js';
import { NEAR_TIE_EPSILON } from '../../src/mock-host/fake-openai-server.js';
import { canaryAgainst, withServer } from '../helpers/canary.js';

describe('the canary against the three engines', () => {
  it('A (wrong sequence state when batched) is a scheduler-state-mismatch at a position, where the reference led by a wide margin', async () => {
    await withServer({ engine: 'wrong-sequence-state' }, async (server) => {
      const result = await canaryAgainst(server);
      expect(canaryResultSchema.safeParse(result).success).toBe(true);
      // The setup did what it says: references alone, probes batched.
      const references = server.requests.slice(0, result.prompts.length);
      expect(references.every((r) => r.batchSize === 1)).toBe(true);
      expect(server.maxBatchSize).toBeGreaterThanOrEqual(2);

      expect(result.verdict).toBe('mismatch');
      expect(result.api).toBe('completions');
      expect(result.logprobs).toBe(5);
      const finding = result.findings.find((f) => f.severity === 'critical');
      expect(finding).toBeDefined();
      expect(finding!.id).toBe('scheduler-state-mismatch');
      expect(finding!.subject).toEqual({ endpoint: `${server.url}/v1`, model: 'toy-recurrent' });
      expect(finding!.confidence).toBeGreaterThanOrEqual(0.75);
      const wide = finding!.divergences.filter((d) => d.reason === 'wide-margin');
      expect(wide.length).toBeGreaterThan(0);
      for (const d of wide) {
        expect(d.unit).toBe('token');
        expect(Number.isInteger(d.position)).toBe(true);
        expect(d.marginNats!).toBeGreaterThanOrEqual(NEAR_TIE_MARGIN_NATS);
        expect(d.referenceToken).not.toBe(d.loadedToken);
        expect(d.reference.length).toBeGreaterThan(0);
        expect(d.loaded.length).toBeGreaterThan(0);
        expect(d.reference.startsWith(d.referenceToken ?? '')).toBe(true);
      }
      // Each divergence is where the reference's tokens and the run's first differ.
      const prompt = result.prompts.find((p) => p.id === wide[0]!.promptId)!;
      expect(prompt.outcome).toBe('mismatch');
      expect(prompt.runs.find((r) => r.run === wide[0]!.run)!.checksum).not.toBe(prompt.reference.checksum);
    });
  });

  it('B (near-ties flip when batched) passes: noise, every margin shown and below the threshold, no finding', async () => {
    await withServer({ engine: 'near-tie-noise' }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.verdict).toBe('noise');
      expect(result.findings).toEqual([]);
      const noisy = result.prompts.flatMap((p) => p.runs).filter((r) => r.outcome === 'noise');
      expect(noisy.length).toBeGreaterThan(0);
      for (const run of noisy) {
        expect(run.divergence!.marginNats).not.toBeNull();
        expect(run.divergence!.marginNats!).toBeGreaterThanOrEqual(0);
        expect(run.divergence!.marginNats!).toBeLessThan(NEAR_TIE_EPSILON);
        expect(run.divergence!.runnerUp).toBe(run.divergence!.loadedToken);
      }
      expect(result.counts.mismatch).toBe(0);
    });
  });

  it('C (exact) passes clean: every checksum under load is its reference checksum', async () => {
    await withServer({ engine: 'exact' }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.verdict).toBe('consistent');
      expect(result.findings).toEqual([]);
      expect(result.counts).toEqual({ same: 24, noise: 0, mismatch: 0, unjudged: 0 });
      for (const prompt of result.prompts) for (const run of prompt.runs) expect(run.checksum).toBe(prompt.reference.checksum);
      expect(server.maxBatchSize).toBeGreaterThanOrEqual(2);
    });
  });

  it('the verdict follows the engine: swapping engines swaps verdicts', async () => {
    const verdicts: Record<string, string> = {};
    for (const engine of ['exact', 'wrong-sequence-state', 'near-tie-noise'] as const) {
      verdicts[engine] = await withServer({ engine }, async (server) => (await canaryAgainst(server)).verdict);
    }
    expect(verdicts).toEqual({ exact: 'consistent', 'wrong-sequence-state': 'mismatch', 'near-tie-noise': 'noise' });
  });

  it('on a batch-invariant server (--batch-invariant), B\'s near-tie flips are mismatches', async () => {
    await withServer({ engine: 'near-tie-noise' }, async (server) => {
      const result = await canaryAgainst(server, { batchInvariant: true });
      expect(result.verdict).toBe('mismatch');
      expect(result.findings[0]!.divergences.every((d) => d.reason === 'batch-invariant' || d.reason === 'degenerate')).toBe(true);
    });
  });

  it('the finding comes from the margin: with the threshold above every margin, A is noise (unless its output degenerates)', async () => {
    await withServer({ engine: 'wrong-sequence-state' }, async (server) => {
      const result = await canaryAgainst(server, { nearTieMarginNats: 50 });
      const runs = result.prompts.flatMap((p) => p.runs);
      expect(runs.some((r) => r.reason === 'wide-margin')).toBe(false);
      expect(runs.filter((r) => r.outcome === 'mismatch').every((r) => r.reason === 'degenerate')).toBe(true);
      expect(runs.some((r) => r.outcome === 'noise')).toBe(true);
    });
  });

  it('the chat completions API alone works the same: A caught, B noise with margins', async () => {
    await withServer({ engine: 'wrong-sequence-state', apis: 'chat-only' }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.api).toBe('chat');
      expect(result.verdict).toBe('mismatch');
      expect(result.warnings.some((w) => /chat completions API/.test(w))).toBe(true);
      expect(server.requests[0]!.path).toBe('/v1/completions');
      expect(server.requests.slice(1).every((r) => r.path === '/v1/chat/completions')).toBe(true);
    });
    await withServer({ engine: 'near-tie-noise', apis: 'chat-only' }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.verdict).toBe('noise');
      expect(result.prompts.flatMap((p) => p.runs).every((r) => r.outcome !== 'noise' || r.divergence!.marginNats! < NEAR_TIE_EPSILON)).toBe(true);
    });
  });

  it('without logprobs the margins are unknown: A\'s divergences are reported unjudged, a low-confidence warning, never called noise', async () => {
    await withServer({ engine: 'wrong-sequence-state', misbehave: { kind: 'no-logprobs' } }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.logprobs).toBe(0);
      expect(result.counts.noise).toBe(0);
      expect(result.warnings.some((w) => /no logprobs/.test(w))).toBe(true);
      const unjudged = result.findings.find((f) => f.severity === 'warning');
      expect(unjudged).toBeDefined();
      expect(unjudged!.confidence).toBeLessThanOrEqual(0.5);
      expect(unjudged!.title).toMatch(/noise cannot be told/);
      expect(unjudged!.divergences.every((d) => d.marginNats === null && d.unit === 'char')).toBe(true);
      expect(['unjudged', 'mismatch']).toContain(result.verdict);
    });
    await withServer({ engine: 'exact', misbehave: { kind: 'no-logprobs' } }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.verdict).toBe('consistent');
      expect(result.prompts[0]!.reference.checksum).toMatch(/^sha256-text:/);
    });
  });

  it('a server that refuses logprobs is asked again without them, and says the margins are unknown', async () => {
    await withServer({ engine: 'exact', maxLogprobs: 0 }, async (server) => {
      const result = await canaryAgainst(server);
      expect(result.verdict).toBe('consistent');
      expect(result.logprobs).toBe(0);
      expect(result.warnings.some((w) => /refused logprobs/.test(w))).toBe(true);
    });
  });
});
