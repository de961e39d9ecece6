/**
 * The API base a user's URL means, and what the client sends: greedy (temperature 0), the seed,
 * logprobs in each API's own shape.
 */
import { describe, expect, it } from 'vitest';

import { apiBase } from '../../src/canary/openai-client.js';
import { canaryAgainst, withServer } from '../helpers/canary.js';

describe('apiBase', () => {
  it.each([
    ['http://h:8000', 'http://h:8000/v1'],
    ['http://h:8000/', 'http://h:8000/v1'],
    ['http://h:8000/v1', 'http://h:8000/v1'],
    ['http://h:8000/v1/', 'http://h:8000/v1'],
    ['http://h:8000/v1/completions', 'http://h:8000/v1'],
    ['https://h/v1/chat/completions?x=1#y', 'https://h/v1'],
    ['https://gateway/proxy/openai', 'https://gateway/proxy/openai'],
  ])('%s -> %s', (given, base) => {
    expect(apiBase(given).toString()).toBe(base);
  });

  it.each(['not a url', 'ftp://h/', 'http://user:pass@h/v1', 'http://token@h/v1'])('%s is refused', (given) => {
    expect(() => apiBase(given)).toThrow(/--openai/);
  });
});

describe('the requests', () => {
  it('each prompt goes alone first, then under load; every request is greedy with the seed and logprobs', async () => {
    await withServer({ engine: 'exact' }, async (server) => {
      const result = await canaryAgainst(server, { promptCount: 2, runsPerPrompt: 1, concurrency: 3, seed: 99 });
      expect(result.verdict).toBe('consistent');
      expect(server.requests.slice(0, 2).map((r) => r.batchSize)).toEqual([1, 1]);
      expect(server.requests.every((r) => r.path === '/v1/completions')).toBe(true);
      for (const request of server.requests) expect(request.body).toMatchObject({ model: 'toy-recurrent', temperature: 0, seed: 99, logprobs: 5, n: 1, stream: false });
      expect(server.requests.slice(0, 2).map((r) => r.body!.max_tokens)).toEqual([32, 32]);
    });
  });

  it('the chat API gets logprobs: true and top_logprobs', async () => {
    await withServer({ engine: 'exact', apis: 'chat-only' }, async (server) => {
      await canaryAgainst(server, { promptCount: 1, runsPerPrompt: 1, concurrency: 2 });
      const chat = server.requests.filter((r) => r.path === '/v1/chat/completions');
      expect(chat.length).toBeGreaterThan(0);
      for (const request of chat) expect(request.body).toMatchObject({ temperature: 0, logprobs: true, top_logprobs: 5, messages: [{ role: 'user' }] });
    });
  });
});
