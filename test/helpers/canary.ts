/**
 * The canary against the fake OpenAI-compatible server, small and fast: short outputs, short
 * fillers, 1 ms steps. Each call starts its own server and closes it.
 */
import type { CanaryOptions } from '../../src/canary/canary-options.js';
import type { CanaryResult } from '../../src/canary/canary-schema.js';
import { runCanary } from '../../src/canary/run-canary.js';
import type { CliIo } from '../../src/cli/cli-io.js';
import { startFakeOpenAiServer, type FakeOpenAiServer, type FakeOpenAiServerOptions } from '../../src/mock-host/fake-openai-server.js';

export const TOY_MODEL = 'toy-recurrent';

/** Small and quick: 6 in flight, 32 tokens per prompt, fillers of 4-60 words and 8-48 tokens. */
export const QUICK: Omit<CanaryOptions, 'url' | 'model'> = {
  concurrency: 6,
  runsPerPrompt: 2,
  maxTokens: 32,
  fillerPromptWords: [4, 60],
  fillerMaxTokens: [8, 48],
  durationMs: 30_000,
  requestBudget: 120,
  requestTimeoutMs: 10_000,
  env: {},
};

/** The same options as `gpu-layers canary` flags. */
export const QUICK_FLAGS = ['--concurrency', '6', '--runs', '2', '--max-tokens', '32', '--prompt-words', '4-60', '--output-tokens', '8-48', '--budget', '120', '--timeout', '10s'];

export async function withServer<T>(options: FakeOpenAiServerOptions, use: (server: FakeOpenAiServer) => Promise<T>): Promise<T> {
  const server = await startFakeOpenAiServer(options);
  try {
    return await use(server);
  } finally {
    await server.close();
  }
}

export async function canaryAgainst(server: FakeOpenAiOptionsOrServer, options: Partial<CanaryOptions> = {}): Promise<CanaryResult> {
  return runCanary({ ...QUICK, url: server.url, model: TOY_MODEL, ...options });
}

type FakeOpenAiOptionsOrServer = Pick<FakeOpenAiServer, 'url'>;

/** The error a promise rejects with (fails the test when it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection, the promise resolved');
}

/** main()'s streams, captured. */
export function capturedIo(env: Record<string, string | undefined> = {}): { io: CliIo; stdout: () => string; stderr: () => string } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (text: string) => out.push(text), columns: 120 }, stderr: { write: (text: string) => err.push(text) }, env },
    stdout: () => out.join(''),
    stderr: () => err.join(''),
  };
}
