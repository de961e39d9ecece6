/**
 * One unary gRPC call over a Unix socket, with node:http2 and nothing else: the request and the
 * answer each one length-prefixed message (a compressed-flag byte, a 4-byte big-endian length, the
 * protobuf bytes), the outcome in the `grpc-status` trailer (or in the headers of a trailers-only
 * answer). A deadline bounds the whole call and a cap bounds the answer, so a peer that never
 * answers or answers without end costs a bounded wait and bounded memory; every failure is a
 * GrpcCallFailure, nothing throws. Protocol facts: grpc/grpc, doc/PROTOCOL-HTTP2.md.
 */
import http2 from 'node:http2';
import net from 'node:net';

export type GrpcCallFailure =
  | { kind: 'socket-missing' | 'permission-denied' | 'refused' | 'connection-failed'; detail: string }
  | { kind: 'timeout'; deadlineMs: number }
  | { kind: 'too-large'; maxBytes: number }
  /** The server answered with a gRPC status other than OK (0). */
  | { kind: 'status'; status: number; message: string }
  /** The peer is not a gRPC server, or broke the framing. */
  | { kind: 'protocol'; detail: string };

export type GrpcCallResult = { ok: true; message: Uint8Array } | { ok: false; failure: GrpcCallFailure };

export interface GrpcCallOptions {
  deadlineMs: number;
  /** The answer's message may be at most this many bytes. */
  maxResponseBytes: number;
}

const FRAME_HEADER_BYTES = 5;

function connectFailure(error: NodeJS.ErrnoException): GrpcCallFailure {
  const detail = error.code ?? error.message;
  if (error.code === 'ENOENT') return { kind: 'socket-missing', detail };
  if (error.code === 'EACCES' || error.code === 'EPERM') return { kind: 'permission-denied', detail };
  // A socket file nobody listens on (the server stopped), or a path that is not a socket.
  if (error.code === 'ECONNREFUSED' || error.code === 'ENOTSOCK') return { kind: 'refused', detail };
  return { kind: 'connection-failed', detail };
}

/** grpc-message is percent-encoded (PROTOCOL-HTTP2.md); a malformed one is shown as sent. */
function statusMessage(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(', ') : (value ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The single message of a unary answer's body. */
function unaryMessage(body: Buffer, maxBytes: number): GrpcCallResult {
  if (body.length < FRAME_HEADER_BYTES) return { ok: false, failure: { kind: 'protocol', detail: `status OK with ${body.length === 0 ? 'no message' : `a ${body.length}-byte fragment of a message`}` } };
  if (body[0] !== 0) return { ok: false, failure: { kind: 'protocol', detail: `a message with compressed flag ${body[0]} (no compression was offered)` } };
  const length = body.readUInt32BE(1);
  if (length > maxBytes) return { ok: false, failure: { kind: 'too-large', maxBytes } };
  if (body.length !== FRAME_HEADER_BYTES + length) {
    const detail = body.length < FRAME_HEADER_BYTES + length ? `a ${length}-byte message cut off after ${body.length - FRAME_HEADER_BYTES} bytes` : 'more than one message in a unary answer';
    return { ok: false, failure: { kind: 'protocol', detail } };
  }
  return { ok: true, message: body.subarray(FRAME_HEADER_BYTES) };
}

/** Calls `method` ("/package.Service/Method") with `request` on the server at `socketPath`. */
export function grpcUnaryCall(socketPath: string, method: string, request: Uint8Array, options: GrpcCallOptions): Promise<GrpcCallResult> {
  return new Promise((resolve) => {
    let settled = false;
    let session: http2.ClientHttp2Session | null = null;
    const finish = (result: GrpcCallResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session?.destroy();
      socket.destroy();
      resolve(result);
    };
    const fail = (failure: GrpcCallFailure): void => finish({ ok: false, failure });
    const timer = setTimeout(() => fail({ kind: 'timeout', deadlineMs: options.deadlineMs }), options.deadlineMs);

    // Connected first, so that a missing socket or a denied one is told apart from a peer that
    // does not speak gRPC (HTTP/2 would report both as a cancelled stream).
    const socket = net.connect(socketPath);
    socket.once('error', (error: NodeJS.ErrnoException) => fail(connectFailure(error)));
    socket.once('connect', () => {
      if (settled) return;
      // The authority is a placeholder: the connection is this socket, not a host's.
      session = http2.connect('http://localhost', { createConnection: () => socket });
      session.on('error', (error: NodeJS.ErrnoException) => fail({ kind: 'protocol', detail: error.code ?? error.message }));
      exchange(session, method, request, options, finish);
    });
  });
}

/** The request and its answer on a connected session; `finish` is called once with the outcome. */
function exchange(session: http2.ClientHttp2Session, method: string, request: Uint8Array, options: GrpcCallOptions, finish: (result: GrpcCallResult) => void): void {
  const fail = (failure: GrpcCallFailure): void => finish({ ok: false, failure });
  const stream = session.request({
    ':method': 'POST',
    ':path': method,
    'content-type': 'application/grpc',
    te: 'trailers',
    // The server may stop work we no longer wait for (PROTOCOL-HTTP2.md: TimeoutValue, TimeoutUnit m).
    'grpc-timeout': `${Math.max(1, Math.ceil(options.deadlineMs))}m`,
  });
  const chunks: Buffer[] = [];
  let received = 0;
  let lengthChecked = false;
  let status: string | string[] | undefined;
  let message: string | string[] | undefined;
  stream.on('response', (headers) => {
    const code = headers[':status'];
    const type = String(headers['content-type'] ?? '');
    if (code !== 200 || !type.startsWith('application/grpc')) {
      fail({ kind: 'protocol', detail: `HTTP ${code ?? '?'} with content-type ${type || 'none'}: not a gRPC server` });
      return;
    }
    // A trailers-only answer (an error without a message) carries the status in its headers.
    status = headers['grpc-status'];
    message = headers['grpc-message'];
  });
  stream.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received > FRAME_HEADER_BYTES + options.maxResponseBytes) {
      fail({ kind: 'too-large', maxBytes: options.maxResponseBytes });
      return;
    }
    chunks.push(chunk);
    // The message's length is known from its first five bytes: refuse a huge one at once.
    if (!lengthChecked && received >= FRAME_HEADER_BYTES) {
      lengthChecked = true;
      if (Buffer.concat(chunks).readUInt32BE(1) > options.maxResponseBytes) fail({ kind: 'too-large', maxBytes: options.maxResponseBytes });
    }
  });
  stream.on('trailers', (trailers) => {
    status = trailers['grpc-status'];
    message = trailers['grpc-message'];
  });
  stream.on('end', () => {
    if (status === undefined) return fail({ kind: 'protocol', detail: 'the answer ended without a grpc-status' });
    const code = Number(status);
    if (code !== 0) return fail({ kind: 'status', status: Number.isInteger(code) ? code : -1, message: statusMessage(message) });
    finish(unaryMessage(Buffer.concat(chunks), options.maxResponseBytes));
  });
  stream.on('error', (error: NodeJS.ErrnoException) => fail({ kind: 'protocol', detail: error.code ?? error.message }));
  stream.on('close', () => fail({ kind: 'protocol', detail: `the stream closed before the answer ended (HTTP/2 code ${stream.rstCode ?? '?'})` }));
  const frame = Buffer.alloc(FRAME_HEADER_BYTES + request.length);
  frame.writeUInt32BE(request.length, 1);
  frame.set(request, FRAME_HEADER_BYTES);
  stream.end(frame);
}
