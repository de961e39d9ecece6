/**
 * A hostile or broken endpoint gives a typed GpuLayersError, never a crash or a hang: no answer
 * (timeout), refused, an HTML page, HTTP 500, a body cut off mid-way, JSON of the wrong shape,
 * not JSON, a body without end (the size cap), a redirect elsewhere (never followed), a model the
 * server does not have, TLS with a certificate nobody trusts (and the same server trusted through
 * --ca-file), an unreadable CA file. Through the CLI each is one line on stderr and exit 4.
 * test/fixtures/canary/server-{cert,key}.pem: a self-signed certificate for 127.0.0.1 (openssl,
 * valid to 2126), made for these tests.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

import { isGpuLayersError, type GpuLayersError } from '../../src/errors.js';
import { main } from '../../src/cli/main.js';
import type { FakeOpenAiMisbehaviour } from '../../src/mock-host/fake-openai-server.js';
import { canaryAgainst, capturedIo, QUICK_FLAGS, rejection, TOY_MODEL, withServer } from '../helpers/canary.js';
import { repoRoot } from '../helpers/paths.js';

const fixtures = path.join(repoRoot, 'test/fixtures/canary');
const tls = { key: readFileSync(path.join(fixtures, 'server-key.pem'), 'utf8'), cert: readFileSync(path.join(fixtures, 'server-cert.pem'), 'utf8') };

async function typedError(promise: Promise<unknown>): Promise<GpuLayersError> {
  const error = await rejection(promise);
  expect(isGpuLayersError(error), String(error)).toBe(true);
  return error as GpuLayersError;
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const CASES: [FakeOpenAiMisbehaviour, string, RegExp][] = [
  ['html', 'CANARY_NOT_OPENAI', /HTML page/],
  ['status-500', 'CANARY_SERVER_ERROR', /HTTP 500: Internal Server Error: the engine died/],
  ['truncated', 'CANARY_RESPONSE_TRUNCATED', /closed the connection after \d+ bytes/],
  ['wrong-json', 'CANARY_RESPONSE_INVALID', /not a completion/],
  ['not-json', 'CANARY_NOT_OPENAI', /not JSON/],
  ['silent', 'CANARY_TIMEOUT', /did not answer within 300 ms/],
  ['endless', 'CANARY_RESPONSE_TOO_LARGE', /more than 65536 bytes/],
  ['redirect', 'CANARY_REDIRECTED', /redirect to http:\/\/collector\.example\.invalid.*never follows/],
];

describe('a hostile or broken endpoint', () => {
  it.each(CASES)('%s: %s', async (kind, code, message) => {
    await withServer({ engine: 'exact', misbehave: { kind } }, async (server) => {
      const error = await typedError(canaryAgainst(server, { requestTimeoutMs: 300, maxResponseBytes: 65_536 }));
      expect(error.code).toBe(code);
      expect(error.category).toBe('input');
      expect(error.message).toMatch(message);
      expect(server.requests.length).toBe(1);
    });
  });

  it('the same failure in the middle of the load is the canary\'s error too (a probe failed) or a counted filler failure', async () => {
    await withServer({ engine: 'exact', misbehave: { kind: 'status-500', after: 14 } }, async (server) => {
      const outcome = await canaryAgainst(server).then(
        (result) => ({ result }),
        (error: unknown) => ({ error }),
      );
      if ('error' in outcome) expect((outcome.error as GpuLayersError).code).toBe('CANARY_SERVER_ERROR');
      else expect(outcome.result.load.fillerFailures).toBeGreaterThan(0);
    });
  });

  it('refused: CANARY_UNREACHABLE', async () => {
    const port = await closedPort();
    const error = await typedError(canaryAgainst({ url: `http://127.0.0.1:${port}` }));
    expect(error.code).toBe('CANARY_UNREACHABLE');
    expect(error.message).toMatch(/connection refused/);
  });

  it('a model the server does not serve: CANARY_NOT_FOUND, with what the server said on both APIs', async () => {
    await withServer({ engine: 'exact' }, async (server) => {
      const error = await typedError(canaryAgainst(server, { model: 'llama-nope' }));
      expect(error.code).toBe('CANARY_NOT_FOUND');
      expect(error.message).toMatch(/\/v1\/completions answered HTTP 404 \(The model `llama-nope` does not exist\.\).*\/v1\/chat\/completions/);
      expect(error.hints.join(' ')).toMatch(/GET \/v1\/models/);
    });
  });

  it('a URL with credentials in it, or not http(s), is a usage error before anything is sent', async () => {
    expect((await typedError(canaryAgainst({ url: 'http://user:secret@127.0.0.1:1' }))).code).toBe('INVALID_OPTIONS');
    expect((await typedError(canaryAgainst({ url: 'ftp://127.0.0.1/' }))).code).toBe('INVALID_OPTIONS');
  });

  it('TLS: a certificate nobody trusts fails as CANARY_TLS_FAILED; the same server with --ca-file passes', async () => {
    await withServer({ engine: 'exact', tls }, async (server) => {
      expect(server.url).toMatch(/^https:/);
      const error = await typedError(canaryAgainst(server));
      expect(error.code).toBe('CANARY_TLS_FAILED');
      expect(error.hints.join(' ')).toMatch(/--ca-file/);
      const result = await canaryAgainst(server, { caFile: path.join(fixtures, 'server-cert.pem'), promptCount: 3, runsPerPrompt: 1 });
      expect(result.verdict).toBe('consistent');
    });
  });

  it('an unreadable or non-PEM CA file: CANARY_CA_FILE_UNREADABLE', async () => {
    expect((await typedError(canaryAgainst({ url: 'https://127.0.0.1:1' }, { caFile: '/nonexistent/ca.pem' }))).code).toBe('CANARY_CA_FILE_UNREADABLE');
    expect((await typedError(canaryAgainst({ url: 'https://127.0.0.1:1' }, { caFile: path.join(fixtures, 'server-key.pem') }))).code).toBe('CANARY_CA_FILE_UNREADABLE');
  });

  it('through the CLI: a message naming the code on stderr (and what to do), exit 4, nothing on stdout', async () => {
    for (const [kind, code] of CASES) {
      await withServer({ engine: 'exact', misbehave: { kind } }, async (server) => {
        const { io, stdout, stderr } = capturedIo();
        const exit = await main(['canary', '--openai', server.url, '--model', TOY_MODEL, ...QUICK_FLAGS, '--timeout', '300ms', '--max-response-size', '64KiB'], io);
        expect(exit, `${kind}: ${stderr()}`).toBe(4);
        expect(stderr()).toMatch(new RegExp(`^gpu-layers canary: .*\\[${code}\\]`));
        expect(stderr()).not.toMatch(/internal error|    at /);
        expect(stdout()).toBe('');
      });
    }
  });
});
