/**
 * A stand-in for the kubelet's pod-resources API on a Unix socket: an HTTP/2 server that answers
 * v1.PodResourcesLister/List as gRPC does (a length-prefixed protobuf message, grpc-status in the
 * trailers), with the pods it is given, or with a gRPC error status when told to fail. FakeHost
 * serves one for the processes it puts in pods, and an agent's tests can start one on their own.
 * Its protobuf bytes come from the small encoder here; gpu-layers' tests check the reader against
 * an independent implementation (@grpc/grpc-js) as well.
 */
import { mkdirSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import path from 'node:path';

import type { PodResources } from '../sources/kubelet-pod-resources.js';

function varint(value: number): number[] {
  const out: number[] = [];
  let rest = value;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

/** A length-delimited field (wire type 2): a string or a nested message. */
function lengthDelimited(field: number, bytes: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(bytes.length)]), bytes]);
}

const text = (field: number, value: string): Buffer => lengthDelimited(field, Buffer.from(value, 'utf8'));

/** grpc-message's encoding: every UTF-8 byte outside 0x20..0x7e, and '%', as %XX (grpc/grpc doc/PROTOCOL-HTTP2.md). */
function percentEncoded(message: string): string {
  return [...Buffer.from(message, 'utf8')].map((byte) => (byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`)).join('');
}

/** A ListPodResourcesResponse (field numbers: kubernetes/kubelet pkg/apis/podresources/v1/api.proto). */
export function encodeListPodResourcesResponse(pods: readonly PodResources[]): Buffer {
  return Buffer.concat(
    pods.map((pod) =>
      lengthDelimited(
        1,
        Buffer.concat([
          text(1, pod.name),
          text(2, pod.namespace),
          ...pod.containers.map((container) =>
            lengthDelimited(
              3,
              Buffer.concat([
                text(1, container.name),
                ...container.devices.map((devices) => lengthDelimited(2, Buffer.concat([text(1, devices.resourceName), ...devices.deviceIds.map((id) => text(2, id))]))),
              ]),
            ),
          ),
        ]),
      ),
    ),
  );
}

export interface FakePodResourcesServer {
  /** The socket it listens on. */
  readonly socket: string;
  /** List calls answered so far. */
  readonly calls: number;
  /** Replaces the pods the next List answers with. */
  set(pods: readonly PodResources[]): void;
  /** Answers the next calls with this gRPC status (7 PERMISSION_DENIED, 12 UNIMPLEMENTED, ...), or normally again with null. */
  failWith(status: { code: number; message: string } | null): void;
  close(): Promise<void>;
}

/** Starts a fake kubelet on `socket` (its folder is made; a stale socket file there is replaced). */
export async function startFakePodResourcesServer(socket: string, pods: readonly PodResources[] = []): Promise<FakePodResourcesServer> {
  let current = pods;
  let failure: { code: number; message: string } | null = null;
  let calls = 0;
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (session) => {
    sessions.add(session);
    session.on('close', () => sessions.delete(session));
  });
  server.on('stream', (stream, headers) => {
    if (headers[':path'] !== '/v1.PodResourcesLister/List') {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '12', 'grpc-message': 'unknown method' }, { endStream: true });
      return;
    }
    // The request (an empty ListPodResourcesRequest) is read to its end before the answer.
    stream.resume();
    stream.on('end', () => {
      calls++;
      if (failure !== null) {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(failure.code), 'grpc-message': percentEncoded(failure.message) }, { endStream: true });
        return;
      }
      const message = encodeListPodResourcesResponse(current);
      const frame = Buffer.alloc(5);
      frame.writeUInt32BE(message.length, 1);
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(Buffer.concat([frame, message]));
    });
  });
  mkdirSync(path.dirname(socket), { recursive: true });
  rmSync(socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  return {
    socket,
    get calls() {
      return calls;
    },
    set: (next) => {
      current = next;
    },
    failWith: (status) => {
      failure = status;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        // Sessions a client left open would keep close() waiting.
        for (const session of sessions) session.destroy();
      }),
  };
}
