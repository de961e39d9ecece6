/**
 * One JSON POST to an OpenAI-compatible server, and every way it can go wrong as a typed error:
 * no answer within the deadline, refused, a TLS failure, a redirect (never followed: the
 * Authorization header must not go to another host), 401/403, 404, other 4xx, 5xx, an HTML page,
 * a body that is not JSON, cut off mid-way, or larger than the cap. node:http(s) rather than
 * fetch: Node's fetch cannot be given an extra CA without undici's Agent, which is not a
 * dependency; the deadline is the same AbortSignal.timeout. Nothing the server says reaches an
 * error message before the token is redacted from it.
 */
import http from 'node:http';
import https from 'node:https';
import { rootCertificates } from 'node:tls';

import { GpuLayersError, type GpuLayersErrorCode } from '../errors.js';
import { redactWith, type BearerToken } from './bearer-token.js';

/** A non-2xx answer: its status and what the server said (redacted, one line, at most 300 characters). */
export class CanaryHttpError extends GpuLayersError {
  readonly status: number;
  readonly serverMessage: string;
  constructor(code: GpuLayersErrorCode, message: string, status: number, serverMessage: string, hints: string[] = []) {
    super(code, message, { hints });
    this.status = status;
    this.serverMessage = serverMessage;
  }
}

export interface TransportOptions {
  /** Deadline of each request, from sending to the last byte of the answer. */
  timeoutMs: number;
  maxResponseBytes: number;
  token: BearerToken | null;
  /** PEM text of extra certificate authorities to trust besides Node's own. */
  extraCa: string | null;
  /** Most connections open at once (the load's concurrency). */
  maxSockets: number;
}

const TLS_CODES: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_REVOKED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'EPROTO',
]);

/** Where a URL points, without its query (which could carry anything). */
export function urlText(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** One line of at most 300 characters, control characters out, the token redacted. */
function oneLine(text: string, redact: (text: string) => string): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  const safe = redact(flat);
  return safe.length > 300 ? `${safe.slice(0, 297)}...` : safe;
}

/** What a non-2xx body says: OpenAI's error.message, FastAPI's detail, or the start of the text. */
function serverMessageOf(text: string, redact: (text: string) => string): string {
  try {
    const json = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    const candidate = typeof json.error === 'object' && json.error !== null ? json.error.message : (json.error ?? json.message ?? json.detail);
    if (typeof candidate === 'string') return oneLine(candidate, redact);
    if (candidate !== undefined) return oneLine(JSON.stringify(candidate), redact);
  } catch {
    // not JSON: the text itself
  }
  return text.trimStart().startsWith('<') ? 'an HTML page' : oneLine(text, redact);
}

export class JsonTransport {
  readonly #options: TransportOptions;
  readonly #redact: (text: string) => string;
  readonly #httpAgent: http.Agent;
  readonly #httpsAgent: https.Agent;

  constructor(options: TransportOptions) {
    this.#options = options;
    this.#redact = redactWith(options.token);
    this.#httpAgent = new http.Agent({ keepAlive: true, maxSockets: options.maxSockets });
    this.#httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: options.maxSockets,
      ...(options.extraCa === null ? {} : { ca: [...rootCertificates, options.extraCa] }),
    });
  }

  get redact(): (text: string) => string {
    return this.#redact;
  }

  /** Closes the kept-alive connections (nothing holds the event loop afterwards). */
  close(): void {
    this.#httpAgent.destroy();
    this.#httpsAgent.destroy();
  }

  /** POSTs `body` as JSON and resolves with the parsed 2xx answer; rejects with a typed error otherwise. */
  post(url: URL, body: unknown, outer?: AbortSignal): Promise<unknown> {
    const { timeoutMs, maxResponseBytes, token } = this.#options;
    const where = urlText(url);
    if (outer?.aborted === true) return Promise.reject(outer.reason);
    return new Promise((resolve, reject) => {
      const timeout = AbortSignal.timeout(timeoutMs);
      const controller = new AbortController();
      const abort = (): void => controller.abort();
      timeout.addEventListener('abort', abort, { once: true });
      outer?.addEventListener('abort', abort, { once: true });
      let settled = false;
      const settle = (error: unknown, value?: unknown): void => {
        if (settled) return;
        settled = true;
        timeout.removeEventListener('abort', abort);
        outer?.removeEventListener('abort', abort);
        if (error === null) resolve(value);
        else reject(error);
      };
      const fail = (code: GpuLayersErrorCode, message: string, hints: string[] = []): void => settle(new GpuLayersError(code, message, { hints }));
      const requestFailed = (error: unknown): void => {
        if (outer?.aborted === true) return settle(outer.reason);
        if (timeout.aborted) return fail('CANARY_TIMEOUT', `${where} did not answer within ${timeoutMs} ms`, ['raise --timeout, or lower --concurrency if the server is saturated']);
        const code = (error as { code?: string }).code ?? '';
        const message = this.#redact((error as Error).message ?? String(error));
        if (TLS_CODES.has(code) || code.startsWith('ERR_TLS') || code.startsWith('ERR_SSL') || /certificate/i.test(message)) {
          return fail('CANARY_TLS_FAILED', `TLS with ${url.host} failed: ${code || message}`, ['a server certificate signed by your own CA needs --ca-file <pem>; an http:// server needs an http:// URL']);
        }
        if (code === 'ECONNREFUSED') return fail('CANARY_UNREACHABLE', `cannot reach ${where}: connection refused (is the server up, and is this its port?)`);
        if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return fail('CANARY_UNREACHABLE', `cannot reach ${where}: no such host (${code})`);
        if (code.startsWith('HPE_')) return fail('CANARY_NOT_OPENAI', `${where} did not answer in HTTP (${code})`);
        if (code === 'ECONNRESET' || code === 'EPIPE' || /socket hang up/i.test(message)) return fail('CANARY_UNREACHABLE', `${where} closed the connection without answering (${code || message})`);
        return fail('CANARY_UNREACHABLE', `cannot reach ${where}: ${code || message}`);
      };
      const payload = Buffer.from(JSON.stringify(body));
      const headers: Record<string, string | number> = {
        'content-type': 'application/json',
        accept: 'application/json',
        'content-length': payload.length,
        'user-agent': 'gpu-layers-canary',
      };
      if (token !== null) headers.authorization = token.authorization();
      const secure = url.protocol === 'https:';
      let request: http.ClientRequest;
      try {
        const requestOptions = { method: 'POST', headers, signal: controller.signal };
        request = secure ? https.request(url, { ...requestOptions, agent: this.#httpsAgent }) : http.request(url, { ...requestOptions, agent: this.#httpAgent });
      } catch (error) {
        requestFailed(error);
        return;
      }
      request.on('error', requestFailed);
      request.on('response', (response) => {
        const status = response.statusCode ?? 0;
        if (status >= 300 && status < 400) {
          let target = 'elsewhere';
          try {
            target = new URL(String(response.headers.location ?? ''), url).origin;
          } catch {
            // an unreadable Location: "elsewhere"
          }
          response.resume();
          request.destroy();
          return fail('CANARY_REDIRECTED', `${where} answered HTTP ${status}, a redirect to ${this.#redact(target)}; the canary never follows redirects (the Authorization header must not travel to another address)`, [
            'give the URL the redirect points to, if it is the same server (e.g. https:// instead of http://)',
          ]);
        }
        const declared = Number(response.headers['content-length']);
        const tooLarge = (): void => {
          request.destroy();
          fail('CANARY_RESPONSE_TOO_LARGE', `${where} answered with more than ${maxResponseBytes} bytes; the cap is --max-response-size`);
        };
        if (Number.isFinite(declared) && declared > maxResponseBytes) return tooLarge();
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxResponseBytes) return tooLarge();
          chunks.push(chunk);
        });
        const cutOff = (): void => {
          if (settled) return;
          if (outer?.aborted === true) return settle(outer.reason);
          if (timeout.aborted) return fail('CANARY_TIMEOUT', `${where} did not finish its answer within ${timeoutMs} ms`, ['raise --timeout, or lower --concurrency if the server is saturated']);
          fail('CANARY_RESPONSE_TRUNCATED', `${where} closed the connection after ${size} bytes of its answer (HTTP ${status}), before the end`);
        };
        response.on('error', cutOff);
        response.on('close', () => {
          if (!response.complete) cutOff();
        });
        response.on('end', () => {
          if (!response.complete) return cutOff();
          try {
            settle(null, this.#interpret(where, status, String(response.headers['content-type'] ?? ''), Buffer.concat(chunks).toString('utf8')));
          } catch (error) {
            settle(error);
          }
        });
      });
      request.end(payload);
    });
  }

  #interpret(where: string, status: number, contentType: string, text: string): unknown {
    if (status < 200 || status >= 300) {
      const said = serverMessageOf(text, this.#redact);
      const message = `${where} answered HTTP ${status}${said === '' ? '' : `: ${said}`}`;
      if (status === 401 || status === 403) {
        throw new CanaryHttpError('CANARY_UNAUTHORIZED', message, status, said, ['put the API key in the environment variable GPU_LAYERS_CANARY_TOKEN (it is sent as Authorization: Bearer)']);
      }
      if (status === 404 || status === 405) throw new CanaryHttpError('CANARY_NOT_FOUND', message, status, said, ['check the URL (the server\'s base, e.g. http://host:8000/v1) and --model (GET /v1/models lists them)']);
      if (status >= 400 && status < 500) throw new CanaryHttpError('CANARY_REQUEST_REJECTED', message, status, said);
      throw new CanaryHttpError('CANARY_SERVER_ERROR', message, status, said);
    }
    if (/html/i.test(contentType) || text.trimStart().startsWith('<')) {
      throw new GpuLayersError('CANARY_NOT_OPENAI', `${where} answered with an HTML page, not JSON (a proxy's or a login page? is this the OpenAI-compatible server's address?)`);
    }
    try {
      return JSON.parse(text);
    } catch {
      throw new GpuLayersError('CANARY_NOT_OPENAI', `${where} answered HTTP ${status} with a body that is not JSON (${text.length} characters, starting "${oneLine(text.slice(0, 40), this.#redact)}")`);
    }
  }
}
