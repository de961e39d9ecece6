/**
 * The options of `runCanary()`, their defaults and their bounds. Out-of-range values are a usage
 * error (INVALID_OPTIONS) before anything is sent. The bearer token is not an option: it is read
 * from GPU_LAYERS_CANARY_TOKEN in `env` only.
 */
import * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { validate } from '../validation.js';
import { NEAR_TIE_MARGIN_NATS } from './near-tie.js';
import { CANARY_PROMPTS } from './prompt-set.js';

export interface CanaryProgress {
  phase: 'reference' | 'load';
  /** Reference runs or probes under load done so far, of `total`. */
  done: number;
  total: number;
  requestsSent: number;
}

export interface CanaryOptions {
  /** The server: its base ("http://host:8000", "https://host/v1") or a completions URL. */
  url: string;
  /** The served model's name, as the server lists it in /v1/models. */
  model: string;
  /** Requests in flight at once under load, the canary's prompts included (default 8). */
  concurrency?: number;
  /** How many times each prompt runs under load (default 2). */
  runsPerPrompt?: number;
  /** How many of the fixed prompts to run, from the first (default all 12). */
  promptCount?: number;
  /** max_tokens of the fixed prompts (default 64). */
  maxTokens?: number;
  /** Filler prompts' length in words, [min, max] (default [8, 1000]: long ones are prefilled in chunks). */
  fillerPromptWords?: readonly [number, number];
  /** Filler requests' max_tokens, [min, max] (default [8, 256]). */
  fillerMaxTokens?: readonly [number, number];
  /** The load phase ends after this long, probes in flight excepted (default 120000). */
  durationMs?: number;
  /** The most requests sent in all; never exceeded (default 240). */
  requestBudget?: number;
  /** Deadline of each request (default 60000). */
  requestTimeoutMs?: number;
  /** Alternatives asked for at each position (default 5; vLLM allows up to --max-logprobs, 20 by default; 0: none). */
  logprobs?: number;
  /** The `seed` sent with every request (default 1234). */
  seed?: number;
  /** Below this margin a divergence is numeric noise (default NEAR_TIE_MARGIN_NATS, 0.5). */
  nearTieMarginNats?: number;
  /** The server runs batch-invariant (VLLM_BATCH_INVARIANT=1): every divergence is a mismatch. */
  batchInvariant?: boolean;
  /** A PEM file of certificate authorities to trust besides Node's own. */
  caFile?: string | null;
  /** The most bytes one answer may have (default 8 MiB). */
  maxResponseBytes?: number;
  /** Where GPU_LAYERS_CANARY_TOKEN is read from (default process.env). */
  env?: Readonly<Record<string, string | undefined>>;
  /** Stops the canary: requests in flight are aborted and runCanary rejects with the signal's reason. */
  signal?: AbortSignal;
  onProgress?: (progress: CanaryProgress) => void;
}

const count = (min: number, max: number) => z.int().check(z.minimum(min), z.maximum(max));
const range = (min: number, max: number) => z.tuple([count(min, max), count(min, max)]).check(z.refine((r) => r[0] <= r[1], 'the minimum must not be above the maximum'));

const optionsSchema = z.object({
  url: z.string().check(z.minLength(1)),
  model: z.string().check(z.minLength(1), z.maxLength(512)),
  concurrency: count(2, 256),
  runsPerPrompt: count(1, 50),
  promptCount: count(1, CANARY_PROMPTS.length),
  maxTokens: count(1, 4096),
  fillerPromptWords: range(1, 20_000),
  fillerMaxTokens: range(1, 8192),
  durationMs: count(100, 86_400_000),
  requestBudget: count(1, 1_000_000),
  requestTimeoutMs: count(50, 3_600_000),
  logprobs: count(0, 20),
  seed: z.int(),
  nearTieMarginNats: z.number().check(z.positive(), z.maximum(50)),
  batchInvariant: z.boolean(),
  caFile: z.nullable(z.string()),
  maxResponseBytes: count(1024, 1024 ** 3),
});

export type ResolvedCanaryOptions = z.infer<typeof optionsSchema> & Pick<CanaryOptions, 'signal' | 'onProgress'> & { env: Readonly<Record<string, string | undefined>> };

export const CANARY_DEFAULTS = {
  concurrency: 8,
  runsPerPrompt: 2,
  promptCount: CANARY_PROMPTS.length,
  maxTokens: 64,
  fillerPromptWords: [8, 1000] as const,
  fillerMaxTokens: [8, 256] as const,
  durationMs: 120_000,
  requestBudget: 240,
  requestTimeoutMs: 60_000,
  logprobs: 5,
  seed: 1234,
  nearTieMarginNats: NEAR_TIE_MARGIN_NATS,
  batchInvariant: false,
  caFile: null,
  maxResponseBytes: 8 * 1024 * 1024,
};

export function resolveCanaryOptions(options: CanaryOptions): ResolvedCanaryOptions {
  const { env, signal, onProgress, ...plain } = options;
  const defined = Object.fromEntries(Object.entries(plain).filter(([, value]) => value !== undefined));
  const result = validate(optionsSchema, { ...CANARY_DEFAULTS, ...defined });
  if (!result.ok) throw new GpuLayersError('INVALID_OPTIONS', `invalid canary options: ${result.message}`);
  return { ...result.data, env: env ?? process.env, signal, onProgress };
}
