/**
 * The kubelet's pod-resources API (v1.PodResourcesLister/List, gRPC on a Unix socket): which pod
 * and container each device a device plugin handed out is assigned to, by the names a person
 * queries (namespace, pod, container). The answer decoded from protobuf, and a reader that lists
 * at most once per `maxAgeMs` with a deadline and a size cap; every failure is a reason.
 *
 * Why this API and not the kubelet's /pods: /pods has pod UIDs (the cgroup's key) but needs a
 * service-account token with the `nodes/proxy` permission, which also lets its holder exec into
 * every pod on the node, and TLS to the kubelet's port 10250. pod-resources needs only its
 * folder mounted read-only (what dcgm-exporter does) and answers with the device assignments
 * themselves, the join's key. Its limit: it has no pod UID, so a GPU shared by several
 * containers (time-slicing, MPS) can be told apart only as far as layers/kubernetes-identity.ts
 * says.
 *
 * The messages, from kubernetes/kubelet pkg/apis/podresources/v1/api.proto (GA in 1.28):
 *   ListPodResourcesResponse { repeated PodResources pod_resources = 1; }
 *   PodResources { string name = 1; string namespace = 2; repeated ContainerResources containers = 3;
 *                  cpu_ids = 4; memory = 5 }
 *   ContainerResources { string name = 1; repeated ContainerDevices devices = 2; cpu_ids = 3;
 *                        memory = 4; dynamic_resources = 5 }
 *   ContainerDevices { string resource_name = 1; repeated string device_ids = 2; topology = 3 }
 * Fields not read here are skipped, as protobuf readers must (newer kubelets add some).
 */
import { lstat } from 'node:fs/promises';

import * as z from 'zod/mini';

import { sourceError } from '../sample/field-errors.js';
import type { FieldError } from '../sample/schema.js';
import { grpcUnaryCall, type GrpcCallFailure } from './grpc-unix-call.js';
import { ProtobufWireError, wireFields, wireString, type WireField } from './protobuf-wire.js';

/** Where the kubelet serves it (kubelet flag --pod-resources-socket's default folder). */
export const DEFAULT_POD_RESOURCES_SOCKET = '/var/lib/kubelet/pod-resources/kubelet.sock';

const LIST_METHOD = '/v1.PodResourcesLister/List';

export const containerDevicesSchema = z.object({
  /** "nvidia.com/gpu", "nvidia.com/mig-1g.10gb", ... */
  resourceName: z.string(),
  /** As the device plugin named them: "GPU-<uuid>", "MIG-<uuid>", "GPU-<uuid>::2" for a shared replica. */
  deviceIds: z.array(z.string()),
});

export const podResourcesSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  containers: z.array(z.object({ name: z.string(), devices: z.array(containerDevicesSchema) })),
});

export type ContainerDevices = z.infer<typeof containerDevicesSchema>;
export type PodResources = z.infer<typeof podResourcesSchema>;

function stringOf(f: WireField): string {
  if (f.wireType !== 'bytes') throw new ProtobufWireError(`field ${f.field} should be a string, is a ${f.wireType}`);
  return wireString(f.bytes, f.field);
}

function bytesOf(f: WireField): Uint8Array {
  if (f.wireType !== 'bytes') throw new ProtobufWireError(`field ${f.field} should be a message, is a ${f.wireType}`);
  return f.bytes;
}

function decodeDevices(bytes: Uint8Array): ContainerDevices {
  const devices: ContainerDevices = { resourceName: '', deviceIds: [] };
  for (const f of wireFields(bytes)) {
    if (f.field === 1) devices.resourceName = stringOf(f);
    else if (f.field === 2) devices.deviceIds.push(stringOf(f));
  }
  return devices;
}

function decodeContainer(bytes: Uint8Array): PodResources['containers'][number] {
  const container: PodResources['containers'][number] = { name: '', devices: [] };
  for (const f of wireFields(bytes)) {
    if (f.field === 1) container.name = stringOf(f);
    else if (f.field === 2) container.devices.push(decodeDevices(bytesOf(f)));
  }
  return container;
}

function decodePod(bytes: Uint8Array): PodResources {
  const pod: PodResources = { namespace: '', name: '', containers: [] };
  for (const f of wireFields(bytes)) {
    if (f.field === 1) pod.name = stringOf(f);
    else if (f.field === 2) pod.namespace = stringOf(f);
    else if (f.field === 3) pod.containers.push(decodeContainer(bytesOf(f)));
  }
  return pod;
}

/**
 * A ListPodResourcesResponse's pods. Throws ProtobufWireError on bytes that are not one (a field
 * cut off, a string that is not UTF-8, a known field of the wrong wire type).
 */
export function decodeListPodResourcesResponse(bytes: Uint8Array): PodResources[] {
  const pods: PodResources[] = [];
  for (const f of wireFields(bytes)) if (f.field === 1) pods.push(decodePod(bytesOf(f)));
  return pods;
}

export type PodResourcesResult = { ok: true; socket: string; pods: PodResources[] } | { ok: false; socket: string; error: FieldError };

function failureReason(socket: string, failure: GrpcCallFailure): FieldError {
  switch (failure.kind) {
    case 'socket-missing':
      return sourceError('POD_RESOURCES_SOCKET_MISSING', `no socket at ${socket}: not a Kubernetes node, or /var/lib/kubelet/pod-resources is not mounted here (mount the folder, not the socket, so a kubelet restart does not break it)`);
    case 'permission-denied':
      return sourceError('POD_RESOURCES_NO_PERMISSION', `${socket} is not open to this user (the kubelet's socket is root's: run as root)`);
    case 'refused':
      return sourceError('POD_RESOURCES_REFUSED', `nothing listens on ${socket} (${failure.detail}): the kubelet is down or restarting`);
    case 'connection-failed':
      return sourceError('POD_RESOURCES_UNREACHABLE', `${socket}: ${failure.detail}`);
    case 'timeout':
      return sourceError('POD_RESOURCES_TIMEOUT', `the kubelet did not answer on ${socket} within ${failure.deadlineMs} ms`);
    case 'too-large':
      return sourceError('POD_RESOURCES_TOO_LARGE', `the kubelet's pod list on ${socket} is larger than ${failure.maxBytes} bytes: not read`);
    case 'status':
      return sourceError('POD_RESOURCES_GRPC_ERROR', `the kubelet answered ${grpcStatusName(failure.status)} (${failure.status})${failure.message === '' ? '' : `: ${failure.message}`}${STATUS_HINTS[failure.status] ?? ''}`);
    case 'protocol':
      return sourceError('POD_RESOURCES_INVALID', `${socket} did not answer as the kubelet's pod-resources API: ${failure.detail}`);
  }
}

/** gRPC status names (grpc/grpc doc/statuscodes.md). */
const STATUS_NAMES = ['OK', 'CANCELLED', 'UNKNOWN', 'INVALID_ARGUMENT', 'DEADLINE_EXCEEDED', 'NOT_FOUND', 'ALREADY_EXISTS', 'PERMISSION_DENIED', 'RESOURCE_EXHAUSTED', 'FAILED_PRECONDITION', 'ABORTED', 'OUT_OF_RANGE', 'UNIMPLEMENTED', 'INTERNAL', 'UNAVAILABLE', 'DATA_LOSS', 'UNAUTHENTICATED'];

function grpcStatusName(status: number): string {
  return STATUS_NAMES[status] ?? 'an unknown gRPC status';
}

const STATUS_HINTS: Record<number, string> = {
  // The kubelet rate-limits this API (since 1.27).
  8: '; the kubelet limits how often its pod-resources API is called: another client calls it often',
  // A kubelet older than v1 of the API (it served v1alpha1 only before 1.20).
  12: '; this kubelet does not serve v1 of the pod-resources API (Kubernetes 1.20 or later does)',
};

export interface PodResourcesReaderOptions {
  /** How long a listing is used before the next (default 5000 ms). */
  maxAgeMs?: number;
  /** The call's deadline (default 2000 ms). */
  deadlineMs?: number;
  /** The largest answer read (default 16 MiB, the kubelet's own e2e tests' client limit). */
  maxResponseBytes?: number;
  now?: () => number;
}

/**
 * Lists the kubelet's pods at most once per `maxAgeMs`, and answers every read in between with
 * that listing (a failure too, so a kubelet that does not answer costs one deadline per period,
 * not one per sample). Why a period: device assignments change only when a container starts or
 * stops, each List serialises every pod on the node, and the kubelet rate-limits the API for all
 * its clients together; the cost is that a container started within the period is not yet named.
 */
export class PodResourcesReader {
  readonly socket: string;
  readonly #options: Required<PodResourcesReaderOptions>;
  #last: { atMs: number; result: Promise<PodResourcesResult> } | null = null;

  constructor(socket: string, options: PodResourcesReaderOptions = {}) {
    this.socket = socket;
    this.#options = { maxAgeMs: 5000, deadlineMs: 2000, maxResponseBytes: 16 * 1024 * 1024, now: Date.now, ...options };
  }

  read(): Promise<PodResourcesResult> {
    const now = this.#options.now();
    if (this.#last !== null && now - this.#last.atMs < this.#options.maxAgeMs && now >= this.#last.atMs) return this.#last.result;
    // Kept while in flight too: samples that ask meanwhile share the one call.
    this.#last = { atMs: now, result: this.#list() };
    return this.#last.result;
  }

  async #list(): Promise<PodResourcesResult> {
    const socket = this.socket;
    const call = await grpcUnaryCall(socket, LIST_METHOD, new Uint8Array(0), { deadlineMs: this.#options.deadlineMs, maxResponseBytes: this.#options.maxResponseBytes });
    if (!call.ok) return { ok: false, socket, error: failureReason(socket, call.failure) };
    try {
      return { ok: true, socket, pods: decodeListPodResourcesResponse(call.message) };
    } catch (error) {
      if (!(error instanceof ProtobufWireError)) throw error;
      return { ok: false, socket, error: sourceError('POD_RESOURCES_INVALID', `the answer on ${socket} is not a ListPodResourcesResponse: ${error.message}`) };
    }
  }
}

/** Whether a Unix socket is at `path` (the default socket is used only where it is). */
export async function isSocket(path: string): Promise<boolean> {
  return lstat(path).then(
    (s) => s.isSocket(),
    () => false,
  );
}
