/**
 * What `runCanary()` returns and `gpu-layers canary --json` prints, as zod schemas (the types are
 * inferred from them). Its findings follow diagnose's Finding where they can (id, severity,
 * confidence, title, summary, window, at, evidence, fix), but their subject is the serving
 * endpoint, not a GPU process, and they carry the divergences themselves: which prompt, where,
 * by what margin, and both continuations.
 */
import * as z from 'zod/mini';

import { evidenceSchema, SEVERITIES, type FindingId } from '../diagnosis/finding-schema.js';

export const CANARY_SCHEMA_VERSION = 1;

export const RUN_OUTCOMES = ['same', 'noise', 'mismatch', 'unjudged'] as const;
export const PROMPT_OUTCOMES = [...RUN_OUTCOMES, 'not-run'] as const;
export const MISMATCH_REASONS = ['wide-margin', 'degenerate', 'batch-invariant'] as const;
/**
 * consistent: every run under load gave its reference's sequence; noise: some differed, all at
 * near-ties; mismatch: a scheduler-state-mismatch finding; unjudged: divergences whose margins
 * are unknown (no logprobs); inconclusive: no run under load completed.
 */
export const CANARY_VERDICTS = ['consistent', 'noise', 'mismatch', 'unjudged', 'inconclusive'] as const;
export const STOPPED_BY = ['plan-complete', 'duration', 'budget'] as const;

const SCHEDULER_STATE_MISMATCH = 'scheduler-state-mismatch' satisfies FindingId;

export const divergenceSchema = z.object({
  position: z.int().check(z.minimum(0)),
  unit: z.enum(['token', 'char']),
  referenceToken: z.nullable(z.string()),
  loadedToken: z.nullable(z.string()),
  /** The reference token's logprob minus the runner-up's at `position`, in nats; null when unknown. */
  marginNats: z.nullable(z.number()),
  runnerUp: z.nullable(z.string()),
  loadedMarginNats: z.nullable(z.number()),
  degenerate: z.nullable(z.enum(['repetition', 'empty'])),
  context: z.string(),
  /** Each run from the divergence on, truncated. */
  reference: z.string(),
  loaded: z.string(),
});

export const canaryRunSchema = z.object({
  /** Which of the prompt's runs under load, from 0. */
  run: z.int().check(z.minimum(0)),
  checksum: z.string(),
  outcome: z.enum(RUN_OUTCOMES),
  reason: z.nullable(z.enum(MISMATCH_REASONS)),
  divergence: z.nullable(divergenceSchema),
});

export const canaryPromptSchema = z.object({
  id: z.string(),
  /** The prompt's text, truncated. */
  prompt: z.string(),
  reference: z.object({
    checksum: z.string(),
    /** Tokens generated; null when the server gave no logprobs (then the text was compared). */
    tokens: z.nullable(z.int()),
    finishReason: z.nullable(z.string()),
  }),
  runs: z.array(canaryRunSchema),
  /** The worst of its runs (mismatch, then unjudged, noise, same), or not-run. */
  outcome: z.enum(PROMPT_OUTCOMES),
});

export const canaryFindingSchema = z.object({
  id: z.literal(SCHEDULER_STATE_MISMATCH),
  severity: z.enum(SEVERITIES),
  confidence: z.number().check(z.minimum(0), z.maximum(1)),
  title: z.string(),
  summary: z.string(),
  subject: z.object({ endpoint: z.string(), model: z.string() }),
  window: z.object({ from: z.string(), to: z.string() }),
  at: z.string(),
  /** Counts: first = alone (0 by construction), last = under load; slopePerHour 0, fit null. */
  evidence: z.array(evidenceSchema),
  divergences: z.array(
    z.object({
      promptId: z.string(),
      run: z.int(),
      reason: z.nullable(z.enum(MISMATCH_REASONS)),
      ...divergenceSchema.shape,
    }),
  ),
  fix: z.string(),
});

export const canaryResultSchema = z.object({
  schemaVersion: z.literal(CANARY_SCHEMA_VERSION),
  /** The API base, without query or credentials. */
  endpoint: z.string(),
  model: z.string(),
  /** The API the server answered on; null when not even the first request succeeded. */
  api: z.nullable(z.enum(['completions', 'chat'])),
  /** Alternatives per position the server returned (0: none, the margins are unknown). */
  logprobs: z.int().check(z.minimum(0)),
  nearTieMarginNats: z.number(),
  batchInvariant: z.boolean(),
  startedAt: z.string(),
  finishedAt: z.string(),
  load: z.object({
    concurrency: z.int(),
    runsPerPrompt: z.int(),
    durationMs: z.int(),
    elapsedMs: z.int(),
    requestBudget: z.int(),
    /** Every request sent, all phases; never above requestBudget. */
    requestsSent: z.int(),
    probesPlanned: z.int(),
    probesRun: z.int(),
    fillersPlanned: z.int(),
    fillersRun: z.int(),
    /** Filler requests that failed (they do not stop the canary; a failed probe does). */
    fillerFailures: z.int(),
    firstFillerError: z.nullable(z.string()),
    /** Most requests the canary had in flight at once. */
    maxInFlight: z.int(),
    stoppedBy: z.enum(STOPPED_BY),
  }),
  prompts: z.array(canaryPromptSchema),
  counts: z.object({ same: z.int(), noise: z.int(), mismatch: z.int(), unjudged: z.int() }),
  verdict: z.enum(CANARY_VERDICTS),
  findings: z.array(canaryFindingSchema),
  warnings: z.array(z.string()),
});

export type CanaryDivergence = z.infer<typeof divergenceSchema>;
export type CanaryRun = z.infer<typeof canaryRunSchema>;
export type CanaryPromptResult = z.infer<typeof canaryPromptSchema>;
export type CanaryFinding = z.infer<typeof canaryFindingSchema>;
export type CanaryResult = z.infer<typeof canaryResultSchema>;
export type CanaryVerdict = (typeof CANARY_VERDICTS)[number];
