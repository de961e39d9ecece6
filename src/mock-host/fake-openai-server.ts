/**
 * A fake OpenAI-compatible server (`/v1/completions`, `/v1/chat/completions`) around the
 * recurrent toy model, batching like a serving engine: requests that arrive within a few
 * milliseconds of each other, or while others are decoding, join one batch, and every step
 * advances all its sequences by one greedy token (continuous batching). Three engines, for the
 * canary:
 * - 'wrong-sequence-state' (variant A): batched, at every fourth step, sequence i is stepped
 *   from the state of sequence i+1 (the write-up's third case: a scheduler that hands one
 *   sequence another's recurrent state). Alone, it is exact.
 * - 'near-tie-noise' (variant B): correct, but batched it perturbs the logits by a little (at
 *   most NEAR_TIE_EPSILON), as a different reduction order would: only where the top two are
 *   within that, the runner-up wins.
 * - 'exact' (variant C): correct and exact, batched or not.
 * And it can misbehave, for the canary's hostile tests: an HTML page, HTTP 500, a body cut off
 * mid-way, JSON of the wrong shape or no JSON at all, no answer, no logprobs, a body without end,
 * a redirect elsewhere, 401 without the right token, and echoing the Authorization header.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

import { logSoftmax, toyModel, type ToyModel } from './recurrent-toy-model.js';

export type FakeOpenAiEngine = 'wrong-sequence-state' | 'near-tie-noise' | 'exact';

export type FakeOpenAiMisbehaviour =
  | 'html'
  | 'status-500'
  | 'truncated'
  | 'wrong-json'
  | 'not-json'
  | 'silent'
  | 'no-logprobs'
  | 'endless'
  | 'redirect'
  | 'echo-authorization'
  | 'echo-authorization-text';

/** Largest logit change the near-tie-noise engine makes under batching. */
export const NEAR_TIE_EPSILON = 0.15;
/** The wrong-sequence-state engine hands each sequence its neighbour's state on steps where step % this === 1. */
const WRONG_STATE_EVERY = 4;

export interface FakeOpenAiServerOptions {
  engine: FakeOpenAiEngine;
  /** The served model's name (default "toy-recurrent"); another name gets vLLM's 404. */
  model?: string;
  /** Which APIs answer (default both); the other answers 404 as FastAPI does. */
  apis?: 'both' | 'chat-only' | 'completions-only';
  /** Most logprobs a request may ask for (default 20, vLLM's --max-logprobs); more gets vLLM's 400. */
  maxLogprobs?: number;
  /** Requests from number `after` on (from 0; default 0) misbehave as `kind`. */
  misbehave?: { kind: FakeOpenAiMisbehaviour; after?: number };
  /** Answer 401 unless the request carries `Authorization: Bearer <requireToken>`. */
  requireToken?: string;
  /** How long an idle engine waits for company before its first step (default 3 ms). */
  batchWindowMs?: number;
  /** Time between steps (default 1 ms). */
  stepMs?: number;
  /** Serve HTTPS with this key and certificate (PEM). */
  tls?: { key: string; cert: string };
}

export interface FakeOpenAiRequestRecord {
  path: string;
  authorization: string | null;
  /** The request's prompt (or its chat message), as sent. */
  prompt: string | null;
  /** The most sequences it was decoded beside, itself included (1: alone; 0: not decoded). */
  batchSize: number;
  /** The JSON body, when it was JSON. */
  body: Record<string, unknown> | null;
}

export interface FakeOpenAiServer {
  url: string;
  port: number;
  /** Every request received, in order. */
  readonly requests: readonly FakeOpenAiRequestRecord[];
  /** The most sequences one step has decoded together. */
  readonly maxBatchSize: number;
  /** Steps that decoded two sequences or more. */
  readonly batchedSteps: number;
  close(): Promise<void>;
}

interface Alternative {
  token: string;
  logprob: number;
}

interface GeneratedToken {
  token: string;
  logprob: number;
  top: Alternative[];
}

interface Sequence {
  state: Float64Array;
  position: number;
  prompt: number[];
  maxTokens: number;
  topN: number;
  generated: GeneratedToken[];
  /** The largest batch it was decoded in. */
  batchSize: number;
  done(tokens: GeneratedToken[], batchSize: number): void;
}

/** Deterministic tiny jitter in [-1, 1] for a logit at a batch size and step. */
function jitter(j: number, batchSize: number, step: number): number {
  let h = Math.imul(j + 1, 0x9e3779b1) ^ Math.imul(batchSize, 0x85ebca6b) ^ Math.imul(step, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d);
  return ((h ^ (h >>> 13)) >>> 0) / 2147483648 - 1;
}

class BatchingEngine {
  readonly #model: ToyModel;
  readonly #engine: FakeOpenAiEngine;
  readonly #batchWindowMs: number;
  readonly #stepMs: number;
  #waiting: Sequence[] = [];
  #running: Sequence[] = [];
  #timer: NodeJS.Timeout | null = null;
  #step = 0;
  maxBatchSize = 0;
  batchedSteps = 0;

  constructor(engine: FakeOpenAiEngine, batchWindowMs: number, stepMs: number) {
    this.#model = toyModel();
    this.#engine = engine;
    this.#batchWindowMs = batchWindowMs;
    this.#stepMs = stepMs;
  }

  get model(): ToyModel {
    return this.#model;
  }

  generate(prompt: string, maxTokens: number, topN: number): Promise<{ tokens: GeneratedToken[]; batchSize: number }> {
    return new Promise((resolve) => {
      const done = (tokens: GeneratedToken[], batchSize: number): void => resolve({ tokens, batchSize });
      this.#waiting.push({ state: this.#model.initialState(), position: 0, prompt: this.#model.tokenize(prompt), maxTokens, topN, generated: [], batchSize: 0, done });
      if (this.#timer === null) this.#timer = setTimeout(() => this.#tick(), this.#batchWindowMs);
    });
  }

  stop(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = null;
  }

  #tick(): void {
    this.#timer = null;
    // Admit what arrived (prefill: each prompt through its own state), then one decode step for all.
    for (const sequence of this.#waiting) {
      for (const token of sequence.prompt) sequence.state = this.#model.step(sequence.state, token, sequence.position++);
      this.#running.push(sequence);
    }
    this.#waiting = [];
    this.#decode();
    this.#running = this.#running.filter((sequence) => {
      if (sequence.generated.length < sequence.maxTokens) return true;
      sequence.done(sequence.generated, sequence.batchSize);
      return false;
    });
    if (this.#running.length > 0 || this.#waiting.length > 0) this.#timer = setTimeout(() => this.#tick(), this.#stepMs);
  }

  #decode(): void {
    const batch = this.#running;
    const n = batch.length;
    if (n === 0) return;
    const step = this.#step++;
    this.maxBatchSize = Math.max(this.maxBatchSize, n);
    if (n > 1) this.batchedSteps++;
    const states = batch.map((sequence) => sequence.state);
    const vocabulary = this.#model.vocabulary;
    batch.forEach((sequence, i) => {
      sequence.batchSize = Math.max(sequence.batchSize, n);
      // The bug of variant A: batched, the state read for slot i is slot i+1's.
      const state = this.#engine === 'wrong-sequence-state' && n > 1 && step % WRONG_STATE_EVERY === 1 ? states[(i + 1) % n]! : states[i]!;
      const logits = this.#model.logits(state);
      if (this.#engine === 'near-tie-noise' && n > 1) this.#perturb(logits, n, step);
      const logprobs = logSoftmax(logits);
      const order = [...logprobs.keys()].sort((a, b) => logprobs[b]! - logprobs[a]! || a - b);
      const chosen = order[0]!;
      sequence.generated.push({
        token: vocabulary[chosen]!,
        logprob: logprobs[chosen]!,
        top: order.slice(0, sequence.topN).map((j) => ({ token: vocabulary[j]!, logprob: logprobs[j]! })),
      });
      sequence.state = this.#model.step(state, chosen, sequence.position++);
    });
  }

  /** A different reduction order: every logit moves by at most 1e-4, and a near-tie goes to the runner-up. */
  #perturb(logits: Float64Array, batchSize: number, step: number): void {
    for (let j = 0; j < logits.length; j++) logits[j] = logits[j]! + 1e-4 * jitter(j, batchSize, step);
    let first = 0;
    for (let j = 1; j < logits.length; j++) if (logits[j]! > logits[first]!) first = j;
    let second = first === 0 ? 1 : 0;
    for (let j = 0; j < logits.length; j++) if (j !== first && logits[j]! > logits[second]!) second = j;
    const gap = logits[first]! - logits[second]!;
    if (gap < NEAR_TIE_EPSILON - 2e-3) logits[second] = logits[second]! + gap + 1e-3;
  }
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    request.on('error', reject);
  });
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) }).end(text);
}

function openAiError(response: ServerResponse, status: number, message: string, type: string): void {
  sendJson(response, status, { error: { message, type, param: null, code: status } });
}

function completionsBody(model: string, tokens: GeneratedToken[], withLogprobs: boolean, promptTokens: number, id: number): unknown {
  let offset = 0;
  const textOffset = tokens.map((t) => {
    const at = offset;
    offset += t.token.length;
    return at;
  });
  return {
    id: `cmpl-${id}`,
    object: 'text_completion',
    created: 1_700_000_000 + id,
    model,
    choices: [
      {
        index: 0,
        text: tokens.map((t) => t.token).join(''),
        logprobs: withLogprobs
          ? {
              text_offset: textOffset,
              token_logprobs: tokens.map((t) => t.logprob),
              tokens: tokens.map((t) => t.token),
              top_logprobs: tokens.map((t) => Object.fromEntries(t.top.map((alt) => [alt.token, alt.logprob]))),
            }
          : null,
        finish_reason: 'length',
        stop_reason: null,
      },
    ],
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens + tokens.length, completion_tokens: tokens.length },
  };
}

function chatBody(model: string, tokens: GeneratedToken[], withLogprobs: boolean, promptTokens: number, id: number): unknown {
  const bytes = (token: string): number[] => [...Buffer.from(token, 'utf8')];
  return {
    id: `chatcmpl-${id}`,
    object: 'chat.completion',
    created: 1_700_000_000 + id,
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: tokens.map((t) => t.token).join(''), tool_calls: [] },
        logprobs: withLogprobs
          ? { content: tokens.map((t) => ({ token: t.token, logprob: t.logprob, bytes: bytes(t.token), top_logprobs: t.top.map((alt) => ({ token: alt.token, logprob: alt.logprob, bytes: bytes(alt.token) })) })) }
          : null,
        finish_reason: 'length',
        stop_reason: null,
      },
    ],
    usage: { prompt_tokens: promptTokens, total_tokens: promptTokens + tokens.length, completion_tokens: tokens.length },
  };
}

interface ParsedRequest {
  model: unknown;
  prompt: string;
  maxTokens: number;
  topN: number;
}

function parseRequest(path: string, body: Record<string, unknown>): ParsedRequest | string {
  const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : 16;
  if (path === '/v1/completions') {
    if (typeof body.prompt !== 'string') return 'prompt must be a string';
    return { model: body.model, prompt: body.prompt, maxTokens, topN: typeof body.logprobs === 'number' ? body.logprobs : 0 };
  }
  const messages = Array.isArray(body.messages) ? (body.messages as { content?: unknown }[]) : null;
  if (messages === null) return 'messages must be a list';
  const prompt = messages.map((m) => (typeof m.content === 'string' ? m.content : '')).join('\n');
  const topN = body.logprobs === true ? (typeof body.top_logprobs === 'number' ? body.top_logprobs : 0) : 0;
  return { model: body.model, prompt, maxTokens, topN };
}

export async function startFakeOpenAiServer(options: FakeOpenAiServerOptions): Promise<FakeOpenAiServer> {
  const model = options.model ?? 'toy-recurrent';
  const apis = options.apis ?? 'both';
  const maxLogprobs = options.maxLogprobs ?? 20;
  const engine = new BatchingEngine(options.engine, options.batchWindowMs ?? 3, options.stepMs ?? 1);
  const requests: FakeOpenAiRequestRecord[] = [];
  const held = new Set<ServerResponse>();

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const path = (request.url ?? '/').split('?')[0]!;
    const authorization = request.headers.authorization ?? null;
    const number = requests.length;
    const record: FakeOpenAiRequestRecord = { path, authorization, prompt: null, batchSize: 0, body: null };
    requests.push(record);
    const raw = await readBody(request);
    const known = path === '/v1/completions' || path === '/v1/chat/completions';
    if (request.method !== 'POST' || !known || (apis === 'chat-only' && path === '/v1/completions') || (apis === 'completions-only' && path !== '/v1/completions')) {
      return sendJson(response, 404, { detail: 'Not Found' });
    }
    if (options.requireToken !== undefined && authorization !== `Bearer ${options.requireToken}`) return sendJson(response, 401, { error: 'Unauthorized' });
    const misbehaviour = options.misbehave !== undefined && number >= (options.misbehave.after ?? 0) ? options.misbehave.kind : null;
    switch (misbehaviour) {
      case 'html':
        return void response.writeHead(200, { 'content-type': 'text/html' }).end('<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');
      case 'status-500':
        return openAiError(response, 500, 'Internal Server Error: the engine died', 'InternalServerError');
      case 'echo-authorization':
        return openAiError(response, 500, `engine failure while serving ${authorization ?? 'no Authorization header'}`, 'InternalServerError');
      case 'truncated': {
        const text = JSON.stringify(completionsBody(model, [{ token: ' the', logprob: -0.1, top: [] }], true, 1, number));
        response.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        response.write(text.slice(0, Math.floor(text.length / 2)));
        setTimeout(() => response.socket?.destroy(), 5);
        return;
      }
      case 'wrong-json':
        return sendJson(response, 200, { object: 'text_completion', choices: [{ text: 42, logprobs: 'none' }] });
      case 'not-json':
        return void response.writeHead(200, { 'content-type': 'application/json' }).end('{"choices": [{"text": "unterminated');
      case 'silent':
        held.add(response);
        return;
      case 'endless': {
        response.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const pump = (): void => {
          if (response.destroyed) return;
          while (response.write(chunk)) if (response.destroyed) return;
          response.once('drain', pump);
        };
        response.write('{"padding": "');
        pump();
        return;
      }
      case 'redirect':
        return void response.writeHead(302, { location: 'http://collector.example.invalid/steal' }).end();
      default:
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(raw) as Record<string, unknown>;
    } catch {
      return openAiError(response, 400, 'request body is not JSON', 'BadRequestError');
    }
    record.body = body;
    const parsed = parseRequest(path, body);
    if (typeof parsed === 'string') return openAiError(response, 400, parsed, 'BadRequestError');
    record.prompt = parsed.prompt;
    if (parsed.model !== model) return openAiError(response, 404, `The model \`${String(parsed.model)}\` does not exist.`, 'NotFoundError');
    if (parsed.topN > maxLogprobs) return openAiError(response, 400, `Requested sample logprobs of ${parsed.topN}, which is greater than max allowed: ${maxLogprobs}`, 'BadRequestError');
    const { tokens, batchSize } = await engine.generate(parsed.prompt, parsed.maxTokens, Math.max(parsed.topN, 1));
    record.batchSize = batchSize;
    if (misbehaviour === 'echo-authorization-text') tokens.push({ token: ` ${authorization ?? ''}`, logprob: -0.01, top: [] });
    const withLogprobs = parsed.topN > 0 && misbehaviour !== 'no-logprobs' && misbehaviour !== 'echo-authorization-text';
    const promptTokens = engine.model.tokenize(parsed.prompt).length;
    sendJson(response, 200, path === '/v1/completions' ? completionsBody(model, tokens, withLogprobs, promptTokens, number) : chatBody(model, tokens, withLogprobs, promptTokens, number));
  };

  const listener = (request: IncomingMessage, response: ServerResponse): void => {
    handle(request, response).catch(() => {
      if (!response.headersSent) openAiError(response, 500, 'fake server failure', 'InternalServerError');
    });
  };
  const server: Server = options.tls === undefined ? createHttpServer(listener) : createHttpsServer({ key: options.tls.key, cert: options.tls.cert }, listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `${options.tls === undefined ? 'http' : 'https'}://127.0.0.1:${port}`,
    port,
    requests,
    get maxBatchSize() {
      return engine.maxBatchSize;
    },
    get batchedSteps() {
      return engine.batchedSteps;
    },
    close: () =>
      new Promise<void>((resolve) => {
        engine.stop();
        for (const response of held) response.destroy();
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
