/**
 * The kubelet's pod-resources API: the protobuf reader against bytes from an independent encoder
 * (@grpc/proto-loader on a .proto written from the kubelet's field numbers), and the gRPC client
 * against a real gRPC server (@grpc/grpc-js on a Unix socket): a listing, a missing socket, error
 * statuses, a server that never answers, an answer over the cap, a peer that is not gRPC, and the
 * listing kept for a few seconds. The fake kubelet gpu-layers/mock ships is read by grpc-js too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttp1Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import * as grpc from '@grpc/grpc-js';
import fc from 'fast-check';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { startFakePodResourcesServer } from '../../src/mock-host/fake-kubelet-pod-resources.js';
import { decodeListPodResourcesResponse, PodResourcesReader, type PodResources } from '../../src/sources/kubelet-pod-resources.js';
import { ProtobufWireError } from '../../src/sources/protobuf-wire.js';
import { fuzzParams, FUZZ_TIMEOUT_MS, mutatedOrRandom } from '../helpers/fuzz.js';

const PROTO = path.join(path.dirname(fileURLToPath(import.meta.url)), '../fixtures/kubernetes/podresources-v1.proto');
const definition = protoLoader.loadSync(PROTO, { longs: Number, defaults: true });
// The package's shape is the .proto's, which grpc-js types only as a generic object.
const lister = (grpc.loadPackageDefinition(definition) as unknown as { v1: { PodResourcesLister: grpc.ServiceClientConstructor } }).v1.PodResourcesLister;
const listMethod = lister.service.List!;

/** A listing as the kubelet sends one, fields gpu-layers does not read included (camelCase: proto-loader's names). */
const LISTING = {
  podResources: [
    {
      name: 'vllm-0',
      namespace: 'serving',
      cpuIds: [2, 3, 300000],
      memory: [{ memoryType: 'memory', size: 2 ** 40, topology: { nodes: [{ ID: 1 }] } }],
      containers: [
        {
          name: 'engine',
          devices: [
            { resourceName: 'nvidia.com/gpu', deviceIds: ['GPU-6f1b3c2a-0000-4000-8000-000000000001', 'GPU-6f1b3c2a-0000-4000-8000-000000000002'], topology: { nodes: [{ ID: 0 }] } },
            { resourceName: 'example.com/nic', deviceIds: ['nic0'] },
          ],
          cpuIds: [4, 5],
          dynamicResources: [{ claimName: 'claim', claimNamespace: 'serving' }],
        },
        { name: 'sidecar', devices: [] },
      ],
    },
    { name: 'trainer-ä', namespace: 'research', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: ['MIG-0c9d8e7f-0000-4000-8000-00000000000a::3'] }] }] },
  ],
};

const EXPECTED: PodResources[] = [
  {
    namespace: 'serving',
    name: 'vllm-0',
    containers: [
      {
        name: 'engine',
        devices: [
          { resourceName: 'nvidia.com/gpu', deviceIds: ['GPU-6f1b3c2a-0000-4000-8000-000000000001', 'GPU-6f1b3c2a-0000-4000-8000-000000000002'] },
          { resourceName: 'example.com/nic', deviceIds: ['nic0'] },
        ],
      },
      { name: 'sidecar', devices: [] },
    ],
  },
  { namespace: 'research', name: 'trainer-ä', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: ['MIG-0c9d8e7f-0000-4000-8000-00000000000a::3'] }] }] },
];

/** The listing's bytes, from proto-loader's serializer (protobufjs), not from gpu-layers. */
const golden = (): Buffer => listMethod.responseSerialize(LISTING);

const decodeError = (bytes: Uint8Array): unknown => {
  try {
    decodeListPodResourcesResponse(bytes);
    return null;
  } catch (error) {
    return error;
  }
};

describe('decodeListPodResourcesResponse', () => {
  it('reads the listing an independent encoder wrote, skipping the fields it does not use', () => {
    const bytes = golden();
    // The other fields are really there: the bytes hold the memory size and the claim's name.
    expect(bytes.includes(Buffer.from('claim'))).toBe(true);
    expect(decodeListPodResourcesResponse(bytes)).toEqual(EXPECTED);
  });

  it('an empty answer is no pods', () => {
    expect(decodeListPodResourcesResponse(listMethod.responseSerialize({ podResources: [] }))).toEqual([]);
  });

  it('skips unknown fields of every wire type (a newer kubelet)', () => {
    // Field 9 fixed64, field 10 fixed32, field 11 varint, field 12 bytes: appended to the top level.
    const unknown = Buffer.from([0x49, 1, 2, 3, 4, 5, 6, 7, 8, 0x55, 1, 2, 3, 4, 0x58, 0x96, 0x01, 0x62, 2, 0xff, 0xfe]);
    expect(decodeListPodResourcesResponse(Buffer.concat([golden(), unknown]))).toEqual(EXPECTED);
  });

  it('a message cut anywhere is an error or, cut between pods, fewer pods: never a wrong name', () => {
    const bytes = golden();
    const firstPodEnd = bytes.length - listMethod.responseSerialize({ podResources: [LISTING.podResources[1]] }).length;
    for (let cut = 0; cut < bytes.length; cut++) {
      const error = decodeError(bytes.subarray(0, cut));
      if (cut === 0) expect(error).toBeNull();
      else if (cut === firstPodEnd) expect(decodeListPodResourcesResponse(bytes.subarray(0, cut))).toEqual([EXPECTED[0]]);
      else expect(error, `cut at ${cut}`).toBeInstanceOf(ProtobufWireError);
    }
  });

  it('refuses what protobuf does not allow', () => {
    const cases: [string, number[]][] = [
      ['a group (wire type 3)', [0x0b]],
      ['wire type 7', [0x0f, 0]],
      ['field number 0', [0x02, 0]],
      ['a varint of eleven bytes', [0x08, ...Array<number>(10).fill(0x80), 0x01]],
      ['a length past the end', [0x0a, 0x05, 0x0a]],
      ['a name that is not UTF-8', [0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28]],
      ['a pod given as a varint', [0x08, 0x01]],
      ['a name given as a varint', [0x0a, 0x02, 0x08, 0x01]],
    ];
    for (const [what, bytes] of cases) expect(decodeError(Uint8Array.from(bytes)), what).toBeInstanceOf(ProtobufWireError);
  });

  it(
    'mutated or random bytes give pods or a ProtobufWireError, nothing else',
    () => {
      fc.assert(
        fc.property(mutatedOrRandom([golden()]), (bytes) => {
          const error = decodeError(bytes);
          expect(error === null || error instanceof ProtobufWireError, String(error)).toBe(true);
        }),
        fuzzParams(300),
      );
    },
    FUZZ_TIMEOUT_MS,
  );
});

type Behaviour = { kind: 'list'; listing: unknown } | { kind: 'status'; code: grpc.status; details: string } | { kind: 'silent' };

describe('PodResourcesReader against a gRPC server', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-pod-resources-'));
  const socket = path.join(dir, 'kubelet.sock');
  let behaviour: Behaviour = { kind: 'list', listing: LISTING };
  let calls = 0;
  const server = new grpc.Server();

  beforeAll(async () => {
    server.addService(lister.service, {
      List: (_call: unknown, callback: grpc.sendUnaryData<unknown>) => {
        calls++;
        if (behaviour.kind === 'list') callback(null, behaviour.listing);
        else if (behaviour.kind === 'status') callback({ code: behaviour.code, details: behaviour.details });
        // 'silent': never answers.
      },
    });
    await new Promise<void>((resolve, reject) => server.bindAsync(`unix:${socket}`, grpc.ServerCredentials.createInsecure(), (error) => (error ? reject(error) : resolve())));
  });
  afterAll(() => {
    server.forceShutdown();
    rmSync(dir, { recursive: true, force: true });
  });

  const read = (options: ConstructorParameters<typeof PodResourcesReader>[1] = {}, at = socket) => new PodResourcesReader(at, options).read();

  it('lists the pods', async () => {
    behaviour = { kind: 'list', listing: LISTING };
    expect(await read()).toEqual({ ok: true, socket, pods: EXPECTED });
  });

  it('a missing socket is a reason that says to mount the folder', async () => {
    const result = await read({}, path.join(dir, 'absent.sock'));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('POD_RESOURCES_SOCKET_MISSING');
    expect(result.error.message).toContain('mount the folder');
  });

  it('a file that is not a listening socket is refused', async () => {
    const file = path.join(dir, 'stale.sock');
    writeFileSync(file, '');
    const result = await read({}, file);
    expect(!result.ok && result.error.code).toBe('POD_RESOURCES_REFUSED');
  });

  it('PERMISSION_DENIED and UNIMPLEMENTED statuses are reasons with the status and what it means', async () => {
    behaviour = { kind: 'status', code: grpc.status.PERMISSION_DENIED, details: 'no access for you: ä, 100%' };
    const denied = await read();
    expect(!denied.ok && denied.error).toMatchObject({ code: 'POD_RESOURCES_GRPC_ERROR' });
    expect(!denied.ok && denied.error.message).toContain('PERMISSION_DENIED (7): no access for you: ä, 100%');
    behaviour = { kind: 'status', code: grpc.status.UNIMPLEMENTED, details: '' };
    const old = await read();
    expect(!old.ok && old.error.message).toMatch(/UNIMPLEMENTED \(12\).*does not serve v1/);
  });

  it('a server that never answers costs the deadline, not more', async () => {
    behaviour = { kind: 'silent' };
    const started = performance.now();
    const result = await read({ deadlineMs: 300 });
    const took = performance.now() - started;
    expect(!result.ok && result.error.code).toBe('POD_RESOURCES_TIMEOUT');
    expect(took).toBeGreaterThanOrEqual(290);
    expect(took).toBeLessThan(2000);
  });

  it('an answer larger than the cap is refused, not read', async () => {
    const many = { podResources: Array.from({ length: 200 }, (_, i) => ({ name: `pod-${i}`, namespace: 'default', containers: [{ name: 'c', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [`GPU-${i}`] }] }] })) };
    const size = listMethod.responseSerialize(many).length;
    behaviour = { kind: 'list', listing: many };
    const capped = await read({ maxResponseBytes: size - 1 });
    expect(!capped.ok && capped.error.code).toBe('POD_RESOURCES_TOO_LARGE');
    const fits = await read({ maxResponseBytes: size });
    expect(fits.ok && fits.pods.length).toBe(200);
  });

  it('lists once per period: reads in between (and at the same time) share the listing', async () => {
    behaviour = { kind: 'list', listing: LISTING };
    let now = 1_000_000;
    const reader = new PodResourcesReader(socket, { maxAgeMs: 5000, now: () => now });
    const before = calls;
    const [a, b] = await Promise.all([reader.read(), reader.read()]);
    now += 4999;
    const c = await reader.read();
    expect(calls - before).toBe(1);
    expect(a).toEqual(b);
    expect(c).toBe(a);
    now += 1;
    await reader.read();
    expect(calls - before).toBe(2);
  });

  it('a peer that is not a gRPC server is a reason, not a hang', async () => {
    const http1 = createHttp1Server((_, response) => response.end('hello'));
    const other = path.join(dir, 'http1.sock');
    await new Promise<void>((resolve) => http1.listen(other, resolve));
    try {
      const result = await read({ deadlineMs: 1500 });
      expect(result.ok).toBe(true);
      const wrong = await read({ deadlineMs: 1500 }, other);
      expect(!wrong.ok && wrong.error.code).toBe('POD_RESOURCES_INVALID');
    } finally {
      http1.closeAllConnections();
      http1.close();
    }
  });
});

describe('the fake kubelet of gpu-layers/mock', () => {
  it('answers a real gRPC client, and fails with the status it is given', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'gpu-layers-fake-kubelet-'));
    const fake = await startFakePodResourcesServer(path.join(dir, 'kubelet.sock'), EXPECTED);
    const client = new lister(`unix:${fake.socket}`, grpc.credentials.createInsecure());
    const list = () =>
      new Promise<{ error: grpc.ServiceError | null; value: { podResources: unknown[] } | undefined }>((resolve) =>
        (client as unknown as { List: (request: object, callback: (error: grpc.ServiceError | null, value?: { podResources: unknown[] }) => void) => void }).List({}, (error, value) => resolve({ error, value })),
      );
    try {
      const answer = await list();
      expect(answer.error).toBeNull();
      // proto-loader's decoding of the fake's bytes, fields the fake does not write left at their defaults.
      expect(answer.value!.podResources).toEqual(
        EXPECTED.map((pod) => ({
          name: pod.name,
          namespace: pod.namespace,
          cpuIds: [],
          memory: [],
          containers: pod.containers.map((c) => ({ name: c.name, cpuIds: [], memory: [], dynamicResources: [], devices: c.devices.map((d) => ({ ...d, topology: null })) })),
        })),
      );
      fake.failWith({ code: grpc.status.PERMISSION_DENIED, message: 'denied: 100% sure' });
      const denied = await list();
      expect(denied.error?.code).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied.error?.details).toBe('denied: 100% sure');
      expect(fake.calls).toBe(2);
    } finally {
      client.close();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
