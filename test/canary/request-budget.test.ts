/**
 * The request budget is never exceeded, counted where it matters: at the server. Across budgets
 * from the smallest that plans to generous ones, with the API found on the second try (chat
 * only) or logprobs refused (asked again), and with the load cut short by its duration. A budget
 * too small for the plan is refused before anything is sent.
 */
import { describe, expect, it } from 'vitest';

import { isGpuLayersError } from '../../src/errors.js';
import { JsonTransport } from '../../src/canary/json-post.js';
import { minimumBudget, NEGOTIATION_RESERVE, planLoad } from '../../src/canary/load-plan.js';
import { apiBase, OpenAiClient } from '../../src/canary/openai-client.js';
import { BudgetExhausted, RequestBudget } from '../../src/canary/request-budget.js';
import { canaryAgainst, rejection, withServer } from '../helpers/canary.js';

describe('the load plan', () => {
  it('fits the budget, runs every prompt each round, and keeps concurrency - 1 fillers ahead of the first probe', () => {
    const options = { concurrency: 8, runsPerPrompt: 2, fillerPromptWords: [8, 1000] as const, fillerMaxTokens: [8, 256] as const, requestBudget: 240 };
    const plan = planLoad(12, options);
    expect(plan.references + NEGOTIATION_RESERVE + plan.load.length).toBeLessThanOrEqual(240);
    expect(plan.load.slice(0, 7).every((r) => r.kind === 'filler')).toBe(true);
    const probes = plan.load.filter((r) => r.kind === 'probe');
    expect(probes).toHaveLength(24);
    expect(probes.slice(0, 12).map((p) => p.promptIndex)).toEqual([...Array(12).keys()]);
    const fillers = plan.load.filter((r) => r.kind === 'filler');
    const words = fillers.map((f) => f.prompt.split(' ').length - 3);
    expect(Math.min(...words)).toBeGreaterThanOrEqual(8);
    expect(Math.max(...words)).toBeLessThanOrEqual(1000);
    expect(new Set(fillers.map((f) => f.maxTokens)).size).toBeGreaterThan(10);
    // Deterministic.
    expect(planLoad(12, options)).toEqual(plan);
  });

  it('refuses a budget below the plan\'s minimum, saying what it needs', () => {
    const options = { concurrency: 4, runsPerPrompt: 1, fillerPromptWords: [1, 2] as const, fillerMaxTokens: [1, 2] as const };
    const minimum = minimumBudget(3, options);
    expect(() => planLoad(3, { ...options, requestBudget: minimum - 1 })).toThrow(new RegExp(`need ${minimum}`));
    expect(planLoad(3, { ...options, requestBudget: minimum }).load.length).toBe(3 + 3);
  });
});

describe('the request budget, counted at the server', () => {
  const small = { concurrency: 4, runsPerPrompt: 1, promptCount: 4 };
  const minimum = minimumBudget(4, small);

  it.each([minimum, minimum + 3, 40, 200])('a budget of %i is never exceeded', async (budget) => {
    await withServer({ engine: 'exact' }, async (server) => {
      const result = await canaryAgainst(server, { ...small, requestBudget: budget });
      expect(server.requests.length).toBeLessThanOrEqual(budget);
      expect(result.load.requestsSent).toBe(server.requests.length);
      expect(result.load.probesRun).toBe(4);
    });
  });

  it('finding the API on the second try and being refused logprobs spend from the same budget', async () => {
    await withServer({ engine: 'exact', apis: 'chat-only', maxLogprobs: 0 }, async (server) => {
      const result = await canaryAgainst(server, { ...small, requestBudget: minimum });
      // completions 404, chat 400 (logprobs), chat again: the reserve is spent to the last request.
      expect(server.requests.length).toBe(minimum);
      expect(result.load.requestsSent).toBe(server.requests.length);
      expect(result.api).toBe('chat');
    });
  });

  it('a load phase cut short by its duration stops dispatching, within the budget', async () => {
    await withServer({ engine: 'exact', stepMs: 5 }, async (server) => {
      const result = await canaryAgainst(server, { concurrency: 4, runsPerPrompt: 5, promptCount: 4, requestBudget: 400, durationMs: 300, fillerMaxTokens: [200, 256] });
      expect(result.load.stoppedBy).toBe('duration');
      expect(result.load.probesRun).toBeLessThan(result.load.probesPlanned);
      expect(server.requests.length).toBeLessThanOrEqual(400);
      expect(result.load.requestsSent).toBe(server.requests.length);
    });
  });

  it('a budget too small is refused before a single request', async () => {
    await withServer({ engine: 'exact' }, async (server) => {
      const error = await rejection(canaryAgainst(server, { ...small, requestBudget: minimum - 1 }));
      expect(isGpuLayersError(error) && error.code === 'INVALID_OPTIONS').toBe(true);
      expect(server.requests.length).toBe(0);
    });
  });
});

describe('the budget guard itself', () => {
  it('takes one per request and refuses past the limit, so a spent budget sends nothing', async () => {
    const budget = new RequestBudget(2);
    expect([budget.tryTake(), budget.tryTake(), budget.tryTake()]).toEqual([true, true, false]);
    expect(budget.used).toBe(2);
    await withServer({ engine: 'exact' }, async (server) => {
      const transport = new JsonTransport({ timeoutMs: 5000, maxResponseBytes: 1 << 20, token: null, extraCa: null, maxSockets: 2 });
      const client = new OpenAiClient({ base: apiBase(server.url), model: 'toy-recurrent', logprobs: 5, seed: 1, transport, budget: new RequestBudget(1) });
      try {
        await client.complete({ prompt: 'one two', maxTokens: 4 });
        expect(await rejection(client.complete({ prompt: 'one two', maxTokens: 4 }))).toBeInstanceOf(BudgetExhausted);
        expect(server.requests.length).toBe(1);
      } finally {
        transport.close();
      }
    });
  });
});
