/**
 * `gpu-layers canary` as a user runs it (the built CLI, spawned) against the fake
 * OpenAI-compatible server: exit 1 for the engine that hands a sequence another's state, 0 for
 * the one whose near-ties flip and the exact one, 4 for a server that answers HTML, 2 without a
 * model; the token from the environment never in what it prints.
 */
import { describe, expect, it } from 'vitest';

import { runCliAsync } from '../helpers/cli.js';
import { QUICK_FLAGS, TOY_MODEL, withServer } from '../helpers/canary.js';

const TOKEN = 'sk-canary-test-0d4f9c';

describe('gpu-layers canary, spawned', () => {
  it.each([
    ['wrong-sequence-state', 1, /MISMATCH/],
    ['near-tie-noise', 0, /noise/],
    ['exact', 0, /same/],
  ] as const)('engine %s: exit %i', { timeout: 60_000 }, async (engine, status, says) => {
    await withServer({ engine, requireToken: TOKEN }, async (server) => {
      const run = await runCliAsync(['canary', '--openai', server.url, '--model', TOY_MODEL, ...QUICK_FLAGS], { GPU_LAYERS_CANARY_TOKEN: TOKEN });
      expect(run.status, run.stderr).toBe(status);
      expect(run.stdout).toMatch(says);
      expect(run.stdout + run.stderr).not.toContain(TOKEN);
    });
  });

  it('a server that answers HTML: exit 4 with the typed error; no model: exit 2', { timeout: 60_000 }, async () => {
    await withServer({ engine: 'exact', misbehave: { kind: 'html' } }, async (server) => {
      const run = await runCliAsync(['canary', '--openai', server.url, '--model', TOY_MODEL, ...QUICK_FLAGS]);
      expect(run.status).toBe(4);
      expect(run.stderr).toMatch(/\[CANARY_[A-Z_]+\]/);
      expect(run.stderr).not.toMatch(/\n\s+at /);
    });
    const usage = await runCliAsync(['canary', '--openai', 'http://127.0.0.1:9']);
    expect(usage.status).toBe(2);
  });
});
