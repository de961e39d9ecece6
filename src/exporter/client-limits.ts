/**
 * What the exporter's HTTP server lets its clients hold, so that no client, nor two hundred of
 * them, can grow its memory without bound or keep Prometheus out: a cap on open connections (a
 * new one past it takes the place of the connection idle longest), a cap on the requests one
 * connection may have waiting for their answers (a client that pipelines and never reads is
 * cut), no request body read (a request with one is answered and its connection closed), and
 * node's header deadline checked every second instead of at its 30 s sweep.
 */
import { createServer, type IncomingMessage, type RequestListener, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface ClientLimits {
  /** Open connections at once; past it, a new one replaces the idlest, or is refused. */
  maxConnections: number;
  /** Requests of one connection whose answers are not yet handed to the kernel (pipelined). */
  maxWaitingResponses: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** How often node checks the two deadlines above (its default is 30 s). */
  deadlineCheckMs: number;
  keepAliveTimeoutMs: number;
  /** A socket with no traffic either way for this long is closed. */
  idleSocketMs: number;
  maxHeaderBytes: number;
}

/**
 * Why these values. Prometheus keeps one keep-alive connection per server that scrapes and never
 * pipelines; a node has a few such clients (an HA pair, an agent, the kubelet's probes, a person
 * with curl), so 32 connections is several times what is needed, and 8 waiting answers more than
 * any client that reads them. What a pipelining client can still cost: node's parser turns a
 * whole read (up to 64 KiB, ~2,000 pipelined GETs) into requests before a cut takes effect, so
 * each such connection costs one read's requests, garbage once it is cut (measured under 200 of
 * them: docs/benchmarks/exporter-abuse.json).
 * Headers in 5 s and a request in 10 s (checked each second, so cut within 6 and 11 s) are far
 * beyond what a scraper on any network needs; Prometheus's own scrape timeout defaults to 10 s.
 */
export const CLIENT_LIMITS: Readonly<ClientLimits> = Object.freeze({
  maxConnections: 32,
  maxWaitingResponses: 8,
  headersTimeoutMs: 5000,
  requestTimeoutMs: 10_000,
  deadlineCheckMs: 1000,
  keepAliveTimeoutMs: 5000,
  idleSocketMs: 15_000,
  maxHeaderBytes: 16 * 1024,
});

interface ConnectionState {
  /** Requests answered or being answered whose response has not finished. */
  waiting: number;
  /** Since when `waiting` has been 0 (performance.now()). */
  idleSince: number;
}

/** Whether the request announces a body (a length over 0, or chunked). */
function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The status line a client whose bytes node's parser refused (or timed out) gets. */
function clientErrorStatus(code: string | undefined): string {
  if (code === 'HPE_HEADER_OVERFLOW') return '431 Request Header Fields Too Large';
  if (code === 'ERR_HTTP_REQUEST_TIMEOUT') return '408 Request Timeout';
  return '400 Bad Request';
}

/** The open connection that has waited on no answer the longest, other than `except`. */
function idlest(connections: ReadonlyMap<Socket, ConnectionState>, except: Socket): Socket | null {
  let found: Socket | null = null;
  let since = Infinity;
  for (const [socket, state] of connections) {
    if (socket !== except && state.waiting === 0 && state.idleSince < since) {
      found = socket;
      since = state.idleSince;
    }
  }
  return found;
}

/** A node:http server running `handler` within `limits`. */
export function createLimitedServer(handler: RequestListener, limits: Readonly<ClientLimits> = CLIENT_LIMITS): Server {
  const connections = new Map<Socket, ConnectionState>();
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      connectionsCheckingInterval: limits.deadlineCheckMs,
    },
    (request: IncomingMessage, response: ServerResponse) => {
      const socket = request.socket;
      const state = connections.get(socket);
      if (state === undefined || socket.destroyed || state.waiting >= limits.maxWaitingResponses) {
        socket.destroy();
        // Node parses every request of a read (up to 64 KiB of pipelined requests) before a cut
        // takes effect, then aborts each with an error whose stack it formats (the bulk of a cut's
        // cost): a request already ended here, without an error, skips that.
        request.destroy();
        return;
      }
      state.waiting += 1;
      response.once('close', () => {
        state.waiting -= 1;
        if (state.waiting === 0) state.idleSince = performance.now();
      });
      // GET needs no body: closing instead of reading one means a body sent slowly holds nothing.
      if (hasBody(request)) response.setHeader('connection', 'close');
      handler(request, response);
    },
  );
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.setTimeout(limits.idleSocketMs, (socket) => socket.destroy());
  server.on('connection', (socket: Socket) => {
    if (connections.size >= limits.maxConnections) {
      // A connection with no request in flight (a slow or silent client, or a scraper between
      // scrapes, which reconnects on its next one) gives way, so that a flood of connections
      // cannot keep a scraper out for longer than it takes to send a request.
      const victim = idlest(connections, socket);
      if (victim === null) {
        socket.destroy();
        return;
      }
      victim.destroy();
      connections.delete(victim);
    }
    connections.set(socket, { waiting: 0, idleSince: performance.now() });
    socket.once('close', () => connections.delete(socket));
  });
  // A client that sends garbage, headers too large or too slowly gets its status and its socket
  // closed, not an exception; one whose answers it does not read is closed at once. Closed both
  // ways once the status is out: node's server allows half-open sockets, so end() alone would
  // leave a client that keeps sending connected.
  server.on('clientError', (error: NodeJS.ErrnoException, socket) => {
    if (socket.writable && socket.writableLength === 0) socket.end(`HTTP/1.1 ${clientErrorStatus(error.code)}\r\nconnection: close\r\n\r\n`, () => socket.destroy());
    else socket.destroy();
  });
  return server;
}
