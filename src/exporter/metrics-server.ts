/**
 * The exporter's HTTP surface: a request listener (createMetricsHandler) that a caller can mount
 * in its own server, and the server `listen()` and `gpu-layers serve` run it in. GET /metrics
 * (the text the last collection rendered, gzipped when the client accepts it; a scrape never
 * touches NVML), GET /healthz, and GET / (a small page listing both); any other path is 404 and
 * any other method 405. The server holds its clients to client-limits.ts: capped connections and
 * pipelining, headers within 5 s (cut within 6), no body read, headers over 16 KiB refused (431).
 */
import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http';
import { promisify } from 'node:util';
import { gzip as gzipCallback } from 'node:zlib';

import { createLimitedServer } from './client-limits.js';

const gzip = promisify(gzipCallback);

export interface MetricsServerOptions {
  /** The exposition to serve (rendered by the collector after each collection). */
  exposition: () => Buffer;
  contentType: string;
  /** The /healthz body: the process serves; what the last collection did. */
  health: () => string;
  /** Shown on the landing page. */
  version?: string;
}

function reply(response: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

/** Whether an Accept-Encoding header accepts gzip (an explicit gzip entry wins over `*`; q=0 refuses). */
export function acceptsGzip(header: string | string[] | undefined): boolean {
  const value = Array.isArray(header) ? header.join(',') : (header ?? '');
  let star: boolean | null = null;
  for (const part of value.split(',')) {
    const [name = '', ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => /^\s*q\s*=\s*([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    const accepted = q === undefined || Number(q) > 0;
    if (name.trim() === 'gzip' || name.trim() === 'x-gzip') return accepted;
    if (name.trim() === '*') star = accepted;
  }
  return star === true;
}

function landingPage(version: string | undefined): string {
  const title = `gpu-layers exporter${version === undefined ? '' : ` ${version}`}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>${title}</h1>
<p>GPU memory by owner: the driver (NVML), the CUDA context, PyTorch's allocator, vLLM's KV cache and weights, and the host.</p>
<ul>
<li><a href="metrics">/metrics</a>: the Prometheus exposition of the last collection (gzip when asked)</li>
<li><a href="healthz">/healthz</a>: whether the exporter serves, and what its last collection did</li>
</ul>
</body></html>
`;
}

/**
 * The request listener: mount it where the caller's server routes (the paths it sees are the
 * ones above, after any prefix the caller's router strips; the landing page links relatively).
 */
export function createMetricsHandler(options: MetricsServerOptions): RequestListener {
  // The gzipped exposition, made once per collection however many scrapers ask for it.
  let gzipped: { source: Buffer; body: Promise<Buffer> } | null = null;
  const page = landingPage(options.version);
  return (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz' && path !== '/') return reply(response, 404, 'not found: gpu-layers serves /metrics, /healthz and /\n');
    if (request.method !== 'GET') return reply(response, 405, `method ${request.method ?? ''} not allowed: GET only\n`, { allow: 'GET' });
    if (path === '/healthz') return reply(response, 200, options.health());
    if (path === '/') return reply(response, 200, page, { 'content-type': 'text/html; charset=utf-8' });
    const exposition = options.exposition();
    if (!acceptsGzip(request.headers['accept-encoding'])) return reply(response, 200, exposition, { 'content-type': options.contentType, vary: 'Accept-Encoding' });
    if (gzipped?.source !== exposition) gzipped = { source: exposition, body: gzip(exposition) };
    gzipped.body.then(
      (body) => reply(response, 200, body, { 'content-type': options.contentType, 'content-encoding': 'gzip', vary: 'Accept-Encoding' }),
      () => reply(response, 200, exposition, { 'content-type': options.contentType, vary: 'Accept-Encoding' }),
    );
  };
}

export function createMetricsServer(options: MetricsServerOptions): Server {
  return createLimitedServer(createMetricsHandler(options));
}
