/**
 * The two answers the canary reads, validated and made into one Completion:
 * - completions (`POST /v1/completions` with `logprobs: N`): `choices[0].text`, and
 *   `choices[0].logprobs` with `tokens`, `token_logprobs`, `top_logprobs` (one {token: logprob}
 *   object per position) and `text_offset`;
 * - chat completions (`POST /v1/chat/completions` with `logprobs: true, top_logprobs: N`):
 *   `choices[0].message.content`, and `choices[0].logprobs.content[]` with `token`, `logprob`,
 *   `top_logprobs[]` of {token, logprob}.
 * `logprobs: null` (a server that does not offer them) is not an error: the comparison then has
 * the text alone. Logprobs that are there but do not add up (lists of different lengths, a
 * logprob above 0) are.
 */
import * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { validateQuietly } from '../validation.js';
import type { Completion, CompletionPosition, TokenAlternative } from './completion.js';

// A logprob is at most 0; a hair above is rounding (an unfused log-softmax), not a broken server.
const logprob = z.number().check(z.maximum(0.01));

const completionsSchema = z.object({
  choices: z
    .array(
      z.object({
        text: z.string(),
        logprobs: z.optional(
          z.nullable(
            z.object({
              tokens: z.array(z.string()),
              token_logprobs: z.array(z.nullable(logprob)),
              top_logprobs: z.optional(z.nullable(z.array(z.nullable(z.record(z.string(), logprob))))),
            }),
          ),
        ),
        finish_reason: z.optional(z.nullable(z.string())),
      }),
    )
    .check(z.minLength(1)),
});

const chatSchema = z.object({
  choices: z
    .array(
      z.object({
        message: z.object({ content: z.nullable(z.string()) }),
        logprobs: z.optional(
          z.nullable(
            z.object({
              content: z.nullable(
                z.array(
                  z.object({
                    token: z.string(),
                    logprob: logprob,
                    top_logprobs: z.optional(z.nullable(z.array(z.object({ token: z.string(), logprob: logprob })))),
                  }),
                ),
              ),
            }),
          ),
        ),
        finish_reason: z.optional(z.nullable(z.string())),
      }),
    )
    .check(z.minLength(1)),
});

const KEYS = new Set(['choices', 'text', 'logprobs', 'tokens', 'token_logprobs', 'top_logprobs', 'finish_reason', 'message', 'content', 'token', 'logprob']);

function sorted(alternatives: TokenAlternative[]): TokenAlternative[] {
  return alternatives.sort((a, b) => b.logprob - a.logprob);
}

/** A `/v1/completions` answer as a Completion. */
export function readCompletionsAnswer(where: string, body: unknown): Completion {
  const result = validateQuietly(completionsSchema, body, KEYS);
  if (!result.ok) throw new GpuLayersError('CANARY_RESPONSE_INVALID', `${where} answered JSON that is not a completion: ${result.message}`);
  const choice = result.data.choices[0]!;
  const finishReason = choice.finish_reason ?? null;
  const lp = choice.logprobs;
  if (lp === undefined || lp === null) return { text: choice.text, positions: null, finishReason };
  const n = lp.tokens.length;
  if (lp.token_logprobs.length !== n || (lp.top_logprobs != null && lp.top_logprobs.length !== n)) {
    throw new GpuLayersError(
      'CANARY_RESPONSE_INVALID',
      `${where} answered logprobs that do not add up: ${n} tokens, ${lp.token_logprobs.length} token_logprobs, ${lp.top_logprobs?.length ?? 'no'} top_logprobs`,
    );
  }
  const positions: CompletionPosition[] = lp.tokens.map((token, i) => {
    const top = lp.top_logprobs?.[i];
    return {
      token,
      logprob: lp.token_logprobs[i] ?? null,
      top: top == null ? null : sorted(Object.entries(top).map(([t, value]) => ({ token: t, logprob: value }))),
    };
  });
  return { text: choice.text, positions, finishReason };
}

/** A `/v1/chat/completions` answer as a Completion. */
export function readChatAnswer(where: string, body: unknown): Completion {
  const result = validateQuietly(chatSchema, body, KEYS);
  if (!result.ok) throw new GpuLayersError('CANARY_RESPONSE_INVALID', `${where} answered JSON that is not a chat completion: ${result.message}`);
  const choice = result.data.choices[0]!;
  const finishReason = choice.finish_reason ?? null;
  const text = choice.message.content ?? '';
  const content = choice.logprobs?.content;
  if (content === undefined || content === null) return { text, positions: null, finishReason };
  const positions: CompletionPosition[] = content.map((entry) => ({
    token: entry.token,
    logprob: entry.logprob,
    top: entry.top_logprobs == null ? null : sorted(entry.top_logprobs.map((alt) => ({ token: alt.token, logprob: alt.logprob }))),
  }));
  return { text, positions, finishReason };
}
