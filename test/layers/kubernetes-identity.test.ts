/**
 * The pure join of GPU processes with the kubelet's device assignments: a GPU of one container,
 * a replica suffix, a MIG device, a process outside any pod, a GPU no container was assigned, a
 * GPU shared by several containers (named only where a pod UID learned on another GPU says which),
 * two pods on a GPU assigned to one, and the result carried into the layered sample.
 */
import { describe, expect, it } from 'vitest';

import { joinLayers } from '../../src/layers/join.js';
import { deviceUuidOf, kubernetesIdentities } from '../../src/layers/kubernetes-identity.js';
import { layeredSampleSchema, type HostLayer } from '../../src/layers/schema.js';
import { buildSample } from '../../src/sample/build-sample.js';
import type { MigDevice, Sample } from '../../src/sample/schema.js';
import type { PodResources } from '../../src/sources/kubelet-pod-resources.js';
import { host10, inputs, processOf } from '../helpers/layered-fixtures.js';
import { context, rawDevice, rawSample, rows } from '../helpers/raw-readings.js';

const GPU0 = 'GPU-00000000-0000-4000-8000-000000000000';
const GPU1 = 'GPU-00000000-0000-4000-8000-000000000001';
const GPU2 = 'GPU-00000000-0000-4000-8000-000000000002';
const MIG_A = 'MIG-11111111-0000-4000-8000-00000000000a';
const UID_A = 'aaaaaaaa-0000-4000-8000-000000000001';
const UID_B = 'bbbbbbbb-0000-4000-8000-000000000002';
const UID_C = 'cccccccc-0000-4000-8000-000000000003';

/** Three GPUs; `pids[i]` are the processes NVML lists on GPU i. */
function sampleOf(pids: number[][]): Sample {
  return buildSample(rawSample(pids.map((list, i) => rawDevice(i, { processRows: rows(...list.map((pid): [number, number, number, number, number] => [0, pid, 100, NaN, NaN])) }))), context());
}

/** GPU 1 in MIG mode with one MIG device, whose process NVML lists under both (as it does). */
function migSample(pid: number): Sample {
  const sample = sampleOf([[], [pid], []]);
  const parent = sample.devices[1]!;
  const process = parent.processes![0]!;
  const mig: MigDevice = { slot: 0, uuid: MIG_A, name: null, gpuInstanceId: 1, computeInstanceId: 0, cudaOrdinal: null, memory: parent.memory, processes: [{ ...process, gpuInstanceId: 1, computeInstanceId: 0 }], errors: {} };
  return { ...sample, devices: sample.devices.map((d, i) => (i === 1 ? { ...d, mig: { enabled: true, pendingEnabled: true, devices: [mig] } } : d)) };
}

function pod(namespace: string, name: string, containers: Record<string, string[]>): PodResources {
  return { namespace, name, containers: Object.entries(containers).map(([container, ids]) => ({ name: container, devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: ids }] })) };
}

/** A process's host layer: in the pod with `uid`, in no pod (null), or with its cgroup unreadable. */
function hostIn(uid: string | null | 'unreadable'): HostLayer {
  if (uid === 'unreadable') return { ...host10, errors: { containerId: { code: 'NO_PERMISSION', nvmlReturn: null, message: 'not readable' } } };
  return { ...host10, podUid: uid, containerId: uid === null ? null : 'ab'.repeat(32), errors: uid === null ? { containerId: { code: 'NO_CONTAINER', nvmlReturn: null, message: 'its cgroup path names no container' } } : {} };
}

const hosts = (entries: [number, string | null | 'unreadable'][]) => new Map(entries.map(([pid, uid]) => [pid, hostIn(uid)]));

describe('kubernetesIdentities', () => {
  it('a GPU assigned to one container names it, with the ids the kubelet assigned', () => {
    const result = kubernetesIdentities(sampleOf([[10], [], []]), hosts([[10, UID_A]]), [pod('serving', 'vllm-0', { engine: [GPU0] }), pod('other', 'x', { c: [GPU2] })]);
    expect(result.get(10)).toEqual({ identity: { namespace: 'serving', pod: 'vllm-0', container: 'engine', deviceIds: [GPU0], matchedBy: 'sole-assignee' }, error: null });
  });

  it('without the host layer the sole assignee is still named (nothing contradicts it)', () => {
    expect(kubernetesIdentities(sampleOf([[10], [], []]), null, [pod('serving', 'vllm-0', { engine: [GPU0] })]).get(10)?.identity?.pod).toBe('vllm-0');
  });

  it('a replica id "GPU-…::N" is its GPU; an id in another form matches nothing', () => {
    expect(deviceUuidOf(`${GPU0}::3`)).toBe(GPU0);
    const result = kubernetesIdentities(sampleOf([[10], [11], []]), null, [pod('serving', 'a', { c: [`${GPU0}::3`] }), pod('gke', 'b', { c: ['nvidia1'] })]);
    expect(result.get(10)?.identity).toMatchObject({ pod: 'a', deviceIds: [`${GPU0}::3`] });
    expect(result.get(11)?.error?.code).toBe('POD_NOT_ASSIGNED');
  });

  it('a MIG device names the container it was assigned to, for the process NVML lists under the GPU and the MIG device', () => {
    const result = kubernetesIdentities(migSample(10), hosts([[10, UID_A]]), [{ namespace: 'research', name: 'trainer', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/mig-1g.10gb', deviceIds: [MIG_A] }] }] }]);
    expect(result.get(10)?.identity).toEqual({ namespace: 'research', pod: 'trainer', container: 'main', deviceIds: [MIG_A], matchedBy: 'sole-assignee' });
  });

  it('a process whose cgroup names no pod is not in one, even on an assigned GPU', () => {
    const result = kubernetesIdentities(sampleOf([[10], [], []]), hosts([[10, null]]), [pod('serving', 'vllm-0', { engine: [GPU0] })]);
    expect(result.get(10)).toMatchObject({ identity: null, error: { code: 'NOT_IN_POD' } });
  });

  it('an unreadable cgroup is not taken for "no pod"', () => {
    const result = kubernetesIdentities(sampleOf([[10], [], []]), hosts([[10, 'unreadable']]), [pod('serving', 'vllm-0', { engine: [GPU0] })]);
    expect(result.get(10)?.identity?.pod).toBe('vllm-0');
  });

  it('a GPU the kubelet assigned to no container: null, with the GPU and the count of pods listed', () => {
    const result = kubernetesIdentities(sampleOf([[], [11], []]), hosts([[11, UID_A]]), [pod('serving', 'vllm-0', { engine: [GPU0] })]);
    expect(result.get(11)?.error?.code).toBe('POD_NOT_ASSIGNED');
    expect(result.get(11)?.error?.message).toContain(`assigned ${GPU1} to no container (1 pods listed)`);
  });

  it('a GPU shared by several containers, with nothing to tell them apart: null, naming them all', () => {
    const pods = [pod('a', 'pod-a', { c: [`${GPU0}::0`] }), pod('b', 'pod-b', { c: [`${GPU0}::1`] }), pod('c', 'pod-c', { c: [`${GPU0}::2`] })];
    const result = kubernetesIdentities(sampleOf([[10, 20], [], []]), hosts([[10, UID_A], [20, UID_B]]), pods);
    for (const pid of [10, 20]) {
      expect(result.get(pid)?.error?.code).toBe('POD_AMBIGUOUS');
      expect(result.get(pid)?.error?.message).toContain(`${GPU0} is shared by 3 containers: a/pod-a/c, b/pod-b/c, c/pod-c/c`);
    }
  });

  it('on a shared GPU, a pod UID learned on a GPU of its own names its process and rules it out for the others', () => {
    // pod-a holds GPU 1 alone and a replica of GPU 0; pod-b the other replica of GPU 0.
    const pods = [pod('a', 'pod-a', { c: [`${GPU0}::0`, GPU1] }), pod('b', 'pod-b', { c: [`${GPU0}::1`] })];
    const sample = sampleOf([[10, 20], [11], []]);
    const result = kubernetesIdentities(sample, hosts([[10, UID_A], [11, UID_A], [20, UID_B]]), pods);
    expect(result.get(11)?.identity).toMatchObject({ pod: 'pod-a', matchedBy: 'sole-assignee' });
    expect(result.get(10)?.identity).toMatchObject({ namespace: 'a', pod: 'pod-a', container: 'c', deviceIds: [`${GPU0}::0`], matchedBy: 'pod-uid' });
    expect(result.get(20)?.identity).toMatchObject({ namespace: 'b', pod: 'pod-b', deviceIds: [`${GPU0}::1`], matchedBy: 'pod-uid' });
    // The same inputs in another order give the same names.
    const reversed = kubernetesIdentities({ ...sample, devices: [...sample.devices].reverse() }, hosts([[20, UID_B], [11, UID_A], [10, UID_A]]), [...pods].reverse());
    expect(reversed).toEqual(result);
  });

  it('a process of an unknown pod is not named on a shared GPU, even when the other pods are known', () => {
    const pods = [pod('a', 'pod-a', { c: [`${GPU0}::0`, GPU1] }), pod('b', 'pod-b', { c: [`${GPU0}::1`] })];
    const result = kubernetesIdentities(sampleOf([[10, 20], [11], []]), hosts([[11, UID_A], [20, 'unreadable']]), pods);
    expect(result.get(20)?.error?.code).toBe('POD_AMBIGUOUS');
    expect(result.get(20)?.error?.message).toContain('--proc-root');
  });

  it('processes of two pods on a GPU assigned to one: neither is named', () => {
    const result = kubernetesIdentities(sampleOf([[10, 20], [], []]), hosts([[10, UID_A], [20, UID_C]]), [pod('serving', 'vllm-0', { engine: [GPU0] })]);
    for (const pid of [10, 20]) {
      expect(result.get(pid)?.error?.code).toBe('POD_CONFLICT');
      expect(result.get(pid)?.error?.message).toContain(`UIDs ${UID_A}, ${UID_C}`);
    }
  });

  it('processes of two pods on two GPUs assigned to one pod: neither is named, whichever GPU each is on', () => {
    const result = kubernetesIdentities(sampleOf([[20], [11], []]), hosts([[11, UID_A], [20, UID_C]]), [pod('a', 'pod-a', { c: [GPU0, GPU1] })]);
    expect(result.get(11)?.error?.code).toBe('POD_CONFLICT');
    expect(result.get(20)?.error?.code).toBe('POD_CONFLICT');
  });

  it('a process whose pod is none of the pods its GPU is shared by (each known by its UID): not assigned', () => {
    const pods = [pod('a', 'pod-a', { c: [`${GPU0}::0`, GPU1] }), pod('b', 'pod-b', { c: [`${GPU0}::1`, GPU2] })];
    const result = kubernetesIdentities(sampleOf([[20], [11], [12]]), hosts([[11, UID_A], [12, UID_B], [20, UID_C]]), pods);
    expect(result.get(11)?.identity?.pod).toBe('pod-a');
    expect(result.get(12)?.identity?.pod).toBe('pod-b');
    expect(result.get(20)?.error?.code).toBe('POD_NOT_ASSIGNED');
    expect(result.get(20)?.error?.message).toContain(`its pod (UID ${UID_C}) is none of those the kubelet assigned ${GPU0} to (a/pod-a is pod ${UID_A}, b/pod-b is pod ${UID_B})`);
  });
});

describe('the identity in the layered sample', () => {
  it('is the process\'s `kubernetes` field, with the reason under errors.kubernetes when null, and reads back through the schema', () => {
    const sample = sampleOf([[10, 20], [], []]);
    const kubernetes = kubernetesIdentities(sample, hosts([[10, UID_A], [20, null]]), [pod('serving', 'vllm-0', { engine: [GPU0] })]);
    const layered = joinLayers(sample, inputs({ kubernetes, host: hosts([[10, UID_A], [20, null]]) }));
    expect(processOf(layered, 10).kubernetes).toEqual({ namespace: 'serving', pod: 'vllm-0', container: 'engine', deviceIds: [GPU0], matchedBy: 'sole-assignee' });
    expect(processOf(layered, 10).errors?.kubernetes).toBeUndefined();
    expect(processOf(layered, 20).kubernetes).toBeNull();
    expect(processOf(layered, 20).errors?.kubernetes?.code).toBe('NOT_IN_POD');
    expect(layeredSampleSchema.parse(JSON.parse(JSON.stringify(layered)))).toEqual(layered);
  });

  it('is null without a reason where pod-resources was not read, and a recording made before the field reads as null', () => {
    const layered = joinLayers(sampleOf([[10], [], []]), inputs());
    expect(processOf(layered, 10).kubernetes).toBeNull();
    expect(processOf(layered, 10).errors?.kubernetes).toBeUndefined();
    const old = JSON.parse(JSON.stringify(layered));
    for (const device of old.devices) for (const p of device.processes) delete p.kubernetes;
    delete old.sources.podResources;
    const read = layeredSampleSchema.parse(old);
    expect(processOf(read, 10).kubernetes).toBeNull();
    expect(read.sources.podResources).toBeNull();
  });
});
