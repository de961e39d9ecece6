/**
 * The exporter's HTTP server: GET /metrics (the text the last collection rendered; a scrape
 * never touches NVML) and GET /healthz; any other path is 404 and any other method 405. Slow or
 * half-open clients cannot hold it: headers must arrive within 5 s, a request within 10 s, an
 * idle connection is closed after 15 s, and headers over 16 KiB are refused (431).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';


export interface MetricsServerOptions {
  /** The exposition to serve (rendered by the collector after each collection). */
  exposition: () => Buffer;
  contentType: string;
  /** The /healthz body: the process serves; what the last collection did. */
  health: () => string;
}

const HEADERS_TIMEOUT_MS = 5000;
const REQUEST_TIMEOUT_MS = 10_000;
const IDLE_SOCKET_MS = 15_000;
const MAX_HEADER_BYTES = 16 * 1024;

function reply(response: ServerResponse, status: number, body: string | Buffer, headers: Record<string, string> = {}): void {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), ...headers });
  response.end(body);
}

export function createMetricsServer(options: MetricsServerOptions): Server {
  const server = createServer({ maxHeaderSize: MAX_HEADER_BYTES, requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS }, (request: IncomingMessage, response: ServerResponse) => {
    const path = (request.url ?? '/').split('?')[0];
    if (path !== '/metrics' && path !== '/healthz') return reply(response, 404, 'not found: gpu-layers serves /metrics and /healthz\n');
    if (request.method !== 'GET') return reply(response, 405, `method ${request.method ?? ''} not allowed: GET only\n`, { allow: 'GET' });
    if (path === '/healthz') return reply(response, 200, options.health());
    reply(response, 200, options.exposition(), { 'content-type': options.contentType });
  });
  server.keepAliveTimeout = 5000;
  server.setTimeout(IDLE_SOCKET_MS, (socket) => socket.destroy());
  // A client that sends garbage gets a 400 (431 for headers over the limit) and its socket
  // closed, not an exception.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    const status = error.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : '400 Bad Request';
    if (socket.writable) socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\n\r\n`);
    else socket.destroy();
  });
  return server;
}
