/**
 * Fuzzing what the canary reads from a server: mutated completions and chat answers (hostile
 * numbers, deleted and repeated keys, __proto__, deep nesting, torn bytes) and random JSON, each
 * ending in a Completion whose lists add up or in CANARY_RESPONSE_INVALID, within a bound; and
 * random bodies over HTTP, each a Completion or a typed error of the transport.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import type { Completion } from '../../src/canary/completion.js';
import { JsonTransport } from '../../src/canary/json-post.js';
import { readChatAnswer, readCompletionsAnswer } from '../../src/canary/openai-responses.js';
import { isGpuLayersError } from '../../src/errors.js';
import { assertNoPollution, CALL_BOUND_MS, FUZZ_TIMEOUT_MS, fuzzParams, mutatedJsonText, timed } from '../helpers/fuzz.js';

const completions = {
  id: 'cmpl-1',
  object: 'text_completion',
  model: 'm',
  choices: [
    {
      index: 0,
      text: ' the cat',
      logprobs: { text_offset: [0, 4], token_logprobs: [-0.1, -0.7], tokens: [' the', ' cat'], top_logprobs: [{ ' the': -0.1, ' a': -2.5 }, { ' cat': -0.7, ' dog': -0.9 }] },
      finish_reason: 'length',
    },
  ],
};
const chat = {
  id: 'chatcmpl-1',
  object: 'chat.completion',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: ' the cat' },
      logprobs: { content: [{ token: ' the', logprob: -0.1, bytes: [32], top_logprobs: [{ token: ' the', logprob: -0.1 }, { token: ' a', logprob: -2.5 }] }] },
      finish_reason: 'length',
    },
  ],
};

function checkCompletion(c: Completion): void {
  expect(typeof c.text).toBe('string');
  if (c.positions === null) return;
  for (const p of c.positions) {
    expect(typeof p.token).toBe('string');
    expect(p.logprob === null || (Number.isFinite(p.logprob) && p.logprob <= 0.01)).toBe(true);
    for (const alt of p.top ?? []) expect(Number.isFinite(alt.logprob) && alt.logprob <= 0.01).toBe(true);
    // Sorted best first.
    const top = p.top ?? [];
    for (let i = 1; i < top.length; i++) expect(top[i - 1]!.logprob).toBeGreaterThanOrEqual(top[i]!.logprob);
  }
}

function readOrReason(read: (where: string, body: unknown) => Completion, body: unknown): void {
  try {
    checkCompletion(read('http://h/v1/x', body));
  } catch (error) {
    expect(isGpuLayersError(error) && error.code === 'CANARY_RESPONSE_INVALID', String(error)).toBe(true);
  }
}

describe('reading OpenAI answers, fuzzed', () => {
  it('the valid seeds read', () => {
    expect(readCompletionsAnswer('w', completions).positions).toHaveLength(2);
    expect(readChatAnswer('w', chat).positions).toHaveLength(1);
  });

  it(
    'mutated answers: a Completion that adds up, or CANARY_RESPONSE_INVALID, within the bound',
    () => {
      fc.assert(
        fc.property(mutatedJsonText([completions, chat]), (text) => {
          let body: unknown;
          try {
            body = JSON.parse(text);
          } catch {
            return; // not JSON: the transport's CANARY_NOT_OPENAI
          }
          for (const read of [readCompletionsAnswer, readChatAnswer]) {
            const { cpuMs } = timed(() => readOrReason(read, body));
            expect(cpuMs).toBeLessThan(CALL_BOUND_MS);
          }
          assertNoPollution();
        }),
        fuzzParams(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'random JSON: the same',
    () => {
      fc.assert(
        fc.property(fc.jsonValue({ maxDepth: 6 }), (body) => {
          readOrReason(readCompletionsAnswer, body);
          readOrReason(readChatAnswer, body);
          readOrReason(readCompletionsAnswer, { choices: [body] });
          readOrReason(readChatAnswer, { choices: [body] });
        }),
        fuzzParams(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );

  it(
    'random bodies and statuses over HTTP: parsed JSON or a typed error, never anything else',
    async () => {
      let next: { status: number; body: Buffer } = { status: 200, body: Buffer.from('{}') };
      const server = createServer((_, response) => response.writeHead(next.status).end(next.body));
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      const url = new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/v1/completions`);
      const transport = new JsonTransport({ timeoutMs: 2000, maxResponseBytes: 4096, token: null, extraCa: null, maxSockets: 2 });
      try {
        await fc.assert(
          fc.asyncProperty(fc.oneof(fc.constantFrom(200, 201, 204, 400, 401, 404, 418, 500, 503), fc.integer({ min: 200, max: 599 })), fc.uint8Array({ maxLength: 6000 }), async (status, bytes) => {
            next = { status, body: Buffer.from(bytes) };
            try {
              await transport.post(url, { prompt: 'x' });
            } catch (error) {
              expect(isGpuLayersError(error), String(error)).toBe(true);
            }
          }),
          fuzzParams(60),
        );
      } finally {
        transport.close();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
    FUZZ_TIMEOUT_MS,
  );
});
