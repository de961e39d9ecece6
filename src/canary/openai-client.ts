/**
 * Greedy completions from an OpenAI-compatible server. The first request finds which API the
 * server has: `/v1/completions` (the token-level logprobs the canary wants, `logprobs: N`), or,
 * when that answers 404 or 405, `/v1/chat/completions` (`logprobs: true, top_logprobs: N`); a
 * server that rejects the logprobs themselves (HTTP 400 naming them, as vLLM does past
 * `--max-logprobs`) is asked again without, and the margins are then unknown. Every request is
 * taken from the budget first.
 */
import { GpuLayersError } from '../errors.js';
import type { Completion } from './completion.js';
import { CanaryHttpError, urlText, type JsonTransport } from './json-post.js';
import { readChatAnswer, readCompletionsAnswer } from './openai-responses.js';
import { BudgetExhausted, type RequestBudget } from './request-budget.js';

export type CanaryApi = 'completions' | 'chat';

export interface CompletionRequest {
  prompt: string;
  maxTokens: number;
}

export interface OpenAiClientOptions {
  /** The API's base, ending in /v1 (see apiBase()). */
  base: URL;
  model: string;
  /** Alternatives asked for at each position (0: no logprobs). */
  logprobs: number;
  seed: number;
  transport: JsonTransport;
  budget: RequestBudget;
}

/**
 * The API base of a URL as a user gives it: "http://host:8000", ".../v1", ".../v1/",
 * ".../v1/completions" and ".../v1/chat/completions" all mean ".../v1"; another path ("/proxy/openai")
 * is taken as the base itself. Credentials in the URL are refused: the token belongs in the
 * environment.
 */
export function apiBase(text: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new GpuLayersError('INVALID_OPTIONS', `--openai expects an http:// or https:// URL, not "${text}"`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new GpuLayersError('INVALID_OPTIONS', `--openai expects an http:// or https:// URL, not a ${url.protocol} one`);
  if (url.username !== '' || url.password !== '') {
    throw new GpuLayersError('INVALID_OPTIONS', '--openai must not carry credentials; put the API key in GPU_LAYERS_CANARY_TOKEN (sent as Authorization: Bearer)');
  }
  url.search = '';
  url.hash = '';
  let path = url.pathname.replace(/\/+$/, '');
  path = path.replace(/\/(chat\/)?completions$/, '');
  if (path === '') path = '/v1';
  url.pathname = path;
  return url;
}

function endpoint(base: URL, api: CanaryApi): URL {
  const url = new URL(base.toString());
  url.pathname = `${base.pathname}/${api === 'completions' ? 'completions' : 'chat/completions'}`;
  return url;
}

export class OpenAiClient {
  readonly #options: OpenAiClientOptions;
  #api: CanaryApi | null = null;
  #logprobs: number;
  readonly warnings: string[] = [];

  constructor(options: OpenAiClientOptions) {
    this.#options = options;
    this.#logprobs = options.logprobs;
  }

  /** The API in use, once the first request found it. */
  get api(): CanaryApi | null {
    return this.#api;
  }

  /** Alternatives asked for at each position now (0 once the server refused them). */
  get logprobs(): number {
    return this.#logprobs;
  }

  #body(api: CanaryApi, request: CompletionRequest): Record<string, unknown> {
    const { model, seed } = this.#options;
    const common = { model, max_tokens: request.maxTokens, temperature: 0, seed, n: 1, stream: false };
    if (api === 'completions') return { ...common, prompt: request.prompt, ...(this.#logprobs > 0 ? { logprobs: this.#logprobs } : {}) };
    return { ...common, messages: [{ role: 'user', content: request.prompt }], ...(this.#logprobs > 0 ? { logprobs: true, top_logprobs: this.#logprobs } : {}) };
  }

  async #send(api: CanaryApi, request: CompletionRequest, signal: AbortSignal | undefined): Promise<Completion> {
    if (!this.#options.budget.tryTake()) throw new BudgetExhausted();
    const url = endpoint(this.#options.base, api);
    const body = await this.#options.transport.post(url, this.#body(api, request), signal);
    return api === 'completions' ? readCompletionsAnswer(urlText(url), body) : readChatAnswer(urlText(url), body);
  }

  /** A greedy completion of `request.prompt`. */
  async complete(request: CompletionRequest, signal?: AbortSignal): Promise<Completion> {
    if (this.#api !== null) return this.#send(this.#api, request, signal);
    return this.#negotiate(request, signal);
  }

  /** The first request: which API, and whether logprobs are offered. */
  async #negotiate(request: CompletionRequest, signal: AbortSignal | undefined): Promise<Completion> {
    const notFound: string[] = [];
    for (const api of ['completions', 'chat'] as const) {
      try {
        const completion = await this.#sendAllowingNoLogprobs(api, request, signal);
        this.#api = api;
        if (notFound.length > 0) this.warnings.push(`${notFound[0]}; using the chat completions API`);
        return completion;
      } catch (error) {
        if (!(error instanceof CanaryHttpError) || error.code !== 'CANARY_NOT_FOUND') throw error;
        notFound.push(`${urlText(endpoint(this.#options.base, api))} answered HTTP ${error.status}${error.serverMessage === '' ? '' : ` (${error.serverMessage})`}`);
      }
    }
    throw new GpuLayersError('CANARY_NOT_FOUND', `no OpenAI-compatible completions here for model "${this.#options.model}": ${notFound.join('; ')}`, {
      hints: ['check the URL (the server\'s base, e.g. http://host:8000/v1) and --model (GET /v1/models lists the served names)'],
    });
  }

  async #sendAllowingNoLogprobs(api: CanaryApi, request: CompletionRequest, signal: AbortSignal | undefined): Promise<Completion> {
    try {
      return await this.#send(api, request, signal);
    } catch (error) {
      const refusedLogprobs = error instanceof CanaryHttpError && error.code === 'CANARY_REQUEST_REJECTED' && /logprob/i.test(error.serverMessage);
      if (!refusedLogprobs || this.#logprobs === 0) throw error;
      this.warnings.push(`the server refused logprobs (${error.serverMessage}); margins are unknown, so divergences cannot be told from numeric noise`);
      this.#logprobs = 0;
      return this.#send(api, request, signal);
    }
  }
}
