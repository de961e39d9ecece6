/**
 * The bearer token: read from GPU_LAYERS_CANARY_TOKEN only (there is no flag for it), sent on
 * every request as `Authorization: Bearer`, and never shown: not in the result, its JSON or the
 * text, not in an error, not in util.inspect, even when the server echoes the header back in an
 * error message or in the generated text.
 */
import { inspect } from 'node:util';
import { describe, expect, it } from 'vitest';

import { BearerToken, CANARY_TOKEN_VARIABLE, readBearerToken } from '../../src/canary/bearer-token.js';
import { main } from '../../src/cli/main.js';
import { isGpuLayersError, type GpuLayersError } from '../../src/errors.js';
import { canaryAgainst, capturedIo, QUICK_FLAGS, rejection, TOY_MODEL, withServer } from '../helpers/canary.js';

const TOKEN = 'sk-canary-Zq8v1TnW3pLr7Yx0';
const env = { [CANARY_TOKEN_VARIABLE]: TOKEN };

describe('the bearer token', () => {
  it('is sent as Authorization: Bearer on every request, and absent from the result', async () => {
    await withServer({ engine: 'wrong-sequence-state', requireToken: TOKEN }, async (server) => {
      const result = await canaryAgainst(server, { env });
      expect(server.requests.length).toBeGreaterThan(12);
      expect(server.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
      expect(result.verdict).toBe('mismatch');
      expect(JSON.stringify(result)).not.toContain(TOKEN);
    });
  });

  it('without it, a server that wants one answers 401: CANARY_UNAUTHORIZED, saying where the token goes', async () => {
    await withServer({ engine: 'exact', requireToken: TOKEN }, async (server) => {
      const error = (await rejection(canaryAgainst(server))) as GpuLayersError;
      expect(isGpuLayersError(error)).toBe(true);
      expect(error.code).toBe('CANARY_UNAUTHORIZED');
      expect(error.hints.join(' ')).toMatch(/GPU_LAYERS_CANARY_TOKEN/);
      expect(server.requests[0]!.authorization).toBeNull();
    });
  });

  it('a server echoing the header in an error message: the error carries [redacted], not the token', async () => {
    await withServer({ engine: 'exact', misbehave: { kind: 'echo-authorization' } }, async (server) => {
      const error = (await rejection(canaryAgainst(server, { env }))) as GpuLayersError;
      expect(error.code).toBe('CANARY_SERVER_ERROR');
      expect(error.message).toContain('Bearer [redacted]');
      expect(`${error.message} ${error.stack} ${inspect(error)} ${JSON.stringify(error)}`).not.toContain(TOKEN);
    });
  });

  it('a server echoing the header in the generated text under load: the divergences show [redacted]', async () => {
    await withServer({ engine: 'exact', misbehave: { kind: 'echo-authorization-text', after: 12 } }, async (server) => {
      const result = await canaryAgainst(server, { env });
      const text = JSON.stringify(result);
      expect(text).not.toContain(TOKEN);
      expect(text).toContain('Bearer [redacted]');
    });
  });

  it('never reaches the CLI\'s output, text or --json, nor its errors', async () => {
    for (const [misbehave, args] of [
      [undefined, []],
      [undefined, ['--json']],
      [{ kind: 'echo-authorization-text' as const, after: 12 }, []],
      [{ kind: 'echo-authorization-text' as const, after: 12 }, ['--json']],
      [{ kind: 'echo-authorization' as const }, []],
    ] as const) {
      await withServer({ engine: 'wrong-sequence-state', ...(misbehave === undefined ? {} : { misbehave }) }, async (server) => {
        const { io, stdout, stderr } = capturedIo(env);
        await main(['canary', '--openai', server.url, '--model', TOY_MODEL, ...QUICK_FLAGS, ...args], io);
        expect(stdout() + stderr()).not.toContain(TOKEN);
        expect(server.requests.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true);
      });
    }
  });

  it('has no flag: --token is a usage error', async () => {
    const { io, stderr } = capturedIo();
    expect(await main(['canary', '--openai', 'http://127.0.0.1:1', '--model', 'm', '--token', TOKEN], io)).toBe(2);
    expect(stderr()).toMatch(/Unknown option '--token'/);
  });

  it('is refused, unsent and unshown, when a header cannot carry it; empty is none', () => {
    for (const bad of ['has space inside', 'tab\there', 'é-non-ascii', 'ab']) {
      let thrown: unknown;
      try {
        readBearerToken({ [CANARY_TOKEN_VARIABLE]: bad });
      } catch (error) {
        thrown = error;
      }
      expect((thrown as GpuLayersError).code).toBe('INVALID_OPTIONS');
      expect((thrown as Error).message).not.toContain(bad);
    }
    expect(readBearerToken({ [CANARY_TOKEN_VARIABLE]: '' })).toBeNull();
    expect(readBearerToken({})).toBeNull();
  });

  it('does not show itself: JSON, inspect, templates', () => {
    const token = new BearerToken(TOKEN);
    expect(`${JSON.stringify({ token })} ${inspect(token)} ${String(token)} ${inspect({ nested: { token } }, { depth: 5 })}`).not.toContain(TOKEN);
    expect(token.authorization()).toBe(`Bearer ${TOKEN}`);
    expect(token.redact(`a ${TOKEN} b ${TOKEN}`)).toBe('a [redacted] b [redacted]');
  });
});
