/**
 * Pod identity end to end: a FakeHost whose processes sit in pods (their cgroup paths name the pod
 * UIDs) and whose fake kubelet assigns the GPUs (one GPU to one container, one GPU time-sliced
 * between two pods, one more GPU for one of them), read by a monitor through the real addon on
 * the mock NVML, and by `gpu-layers probe` (table and --json) from the built CLI.
 */
import { existsSync } from 'node:fs';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { makeStyle } from '../../src/cli/render/style.js';
import { renderWatchFrame } from '../../src/cli/render/watch-view.js';
import { FakeHost, type FakeProcess } from '../../src/mock-host/fake-host.js';
import type { Scenario } from '../../src/mock-host/scenario-schema.js';
import { openMonitor } from '../../src/monitor/monitor.js';
import { readLayers } from '../../src/layers/read-layers.js';
import type { LayeredSample } from '../../src/layers/schema.js';
import { DEFAULT_POD_RESOURCES_SOCKET, type PodResources } from '../../src/sources/kubelet-pod-resources.js';
import { runCliAsync } from '../helpers/cli.js';
import { nodeGypBuild } from '../helpers/paths.js';
import { h100, MiB } from '../helpers/scenarios.js';

const UID_SERVING = '0a1b2c3d-0000-4000-8000-00000000a001';
const UID_A = '0a1b2c3d-0000-4000-8000-00000000b002';
const UID_B = '0a1b2c3d-0000-4000-8000-00000000c003';

function gpuProcess(pid: number, gpu: number, podUid: string | null): FakeProcess {
  return {
    pid,
    ppid: 1,
    command: `python worker-${pid}.py`,
    startTicks: 9_000_000 + pid,
    gpu,
    driverMiB: 2_048,
    allocator: null,
    host: { anonMiB: 900, fileMiB: 300, shmemMiB: 0, driverMappedMiB: 40, container: podUid === null ? null : pid.toString(16).padStart(64, 'c'), ...(podUid === null ? {} : { podUid }) },
  };
}

// GPU 0: the serving pod's engine, and a process outside Kubernetes. GPU 1: two replicas, one
// per research pod. GPU 2: research-a's alone, which tells its pod UID.
const PROCESSES = [gpuProcess(4150, 0, UID_SERVING), gpuProcess(4160, 0, null), gpuProcess(5150, 1, UID_A), gpuProcess(6150, 1, UID_B), gpuProcess(5151, 2, UID_A)];
const SCENARIO: Scenario = {
  driverVersion: '550.127.05',
  nvmlVersion: '12.550.127.05',
  cudaDriverVersion: 12040,
  devices: [0, 1, 2].map((gpu) => h100(gpu, PROCESSES.filter((p) => p.gpu === gpu).map((p) => ({ type: 'compute' as const, pid: p.pid, usedBytes: p.driverMiB * MiB })))),
};
const uuid = (gpu: number): string => SCENARIO.devices[gpu]!.uuid!;
const PODS: PodResources[] = [
  { namespace: 'serving', name: 'vllm-0', containers: [{ name: 'engine', devices: [{ resourceName: 'nvidia.com/gpu', deviceIds: [uuid(0)] }] }, { name: 'proxy', devices: [] }] },
  { namespace: 'research', name: 'trainer-a', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/gpu.shared', deviceIds: [`${uuid(1)}::0`, `${uuid(2)}::0`] }] }] },
  { namespace: 'research', name: 'trainer-b', containers: [{ name: 'main', devices: [{ resourceName: 'nvidia.com/gpu.shared', deviceIds: [`${uuid(1)}::1`] }] }] },
];

let host: FakeHost;
beforeAll(async () => {
  host = new FakeHost();
  await host.set({ scenario: SCENARIO, processes: PROCESSES, pods: PODS });
});
afterAll(async () => {
  await host?.close();
});

const processOf = (sample: LayeredSample, pid: number) => sample.devices.flatMap((d) => d.processes ?? []).find((p) => p.pid === pid)!;

describe('pod identity through a monitor', () => {
  it('names each process from the kubelet and its cgroup, and says why where it cannot', async () => {
    const monitor = await openMonitor(host.monitorOptions());
    let sample: LayeredSample;
    try {
      sample = await monitor.sample();
    } finally {
      await monitor.close();
    }
    expect(sample.sources.podResources).toEqual({ location: host.podResourcesSocket, ok: true, error: null });
    expect(processOf(sample, 4150).kubernetes).toEqual({ namespace: 'serving', pod: 'vllm-0', container: 'engine', deviceIds: [uuid(0)], matchedBy: 'sole-assignee' });
    expect(processOf(sample, 4160).kubernetes).toBeNull();
    expect(processOf(sample, 4160).errors?.kubernetes?.code).toBe('NOT_IN_POD');
    expect(processOf(sample, 5151).kubernetes).toMatchObject({ pod: 'trainer-a', deviceIds: [`${uuid(2)}::0`], matchedBy: 'sole-assignee' });
    // The shared GPU: trainer-a's UID, learned on GPU 2, names both of its processes.
    expect(processOf(sample, 5150).kubernetes).toMatchObject({ namespace: 'research', pod: 'trainer-a', container: 'main', deviceIds: [`${uuid(1)}::0`], matchedBy: 'pod-uid' });
    expect(processOf(sample, 6150).kubernetes).toMatchObject({ namespace: 'research', pod: 'trainer-b', container: 'main', deviceIds: [`${uuid(1)}::1`], matchedBy: 'pod-uid' });
    // `gpu-layers watch` names them beside the pid too.
    const frame = renderWatchFrame([sample], { style: makeStyle(false), width: 120 });
    expect(frame).toMatch(/pid 4150 {2}\S+ \S+ {2}serving\/vllm-0\/engine {2}python worker-4150\.py/);
    expect(frame).toMatch(/pid 4160 {2}\S+ \S+ {2}python worker-4160\.py/);
  });

  it('a FakeHost without pods reads no kubelet (not even the machine\'s): the field is null, the source not asked for', async () => {
    const bare = new FakeHost();
    try {
      await bare.set({ scenario: SCENARIO, processes: PROCESSES });
      expect(bare.monitorOptions().layers?.podResourcesSocket).toBeNull();
      const monitor = await openMonitor(bare.monitorOptions());
      try {
        const sample = await monitor.sample();
        expect(processOf(sample, 4150).kubernetes).toBeNull();
        expect(processOf(sample, 4150).errors?.kubernetes).toBeUndefined();
        expect(sample.sources.podResources?.location).toBeNull();
      } finally {
        await monitor.close();
      }
    } finally {
      await bare.close();
    }
  });
});

describe('the default socket', () => {
  // On a Kubernetes node the default socket is there and is read: nothing to check here then.
  it.skipIf(existsSync(DEFAULT_POD_RESOURCES_SOCKET))('where it is not there, pod-resources is not asked for, and no process gets a reason', async () => {
    const monitor = await openMonitor(host.monitorOptions());
    try {
      const sample = await readLayers(await monitor.probe.sample(), { host: false, statsDir: null, env: host.env });
      expect(sample.sources.podResources).toMatchObject({ location: null, ok: false, error: { code: 'NOT_REQUESTED' } });
      expect(sample.sources.podResources?.error?.message).toContain(DEFAULT_POD_RESOURCES_SOCKET);
      expect(processOf(sample, 4150).kubernetes).toBeNull();
      expect(processOf(sample, 4150).errors?.kubernetes).toBeUndefined();
    } finally {
      await monitor.close();
    }
  });

  it('a podResourcesSocket that is not a path is refused as an option error', async () => {
    const monitor = await openMonitor(host.monitorOptions());
    try {
      const sample = await monitor.probe.sample();
      // A library caller without types: a port number would otherwise be dialled over TCP.
      await expect(readLayers(sample, { host: false, statsDir: null, podResourcesSocket: 10250 as unknown as string })).rejects.toMatchObject({ code: 'INVALID_OPTIONS' });
    } finally {
      await monitor.close();
    }
  });
});

describe('gpu-layers probe', () => {
  const env = () => ({ GPU_LAYERS_MOCK_SCENARIO: host.scenarioFile, GPU_LAYERS_NVML_LIB: nodeGypBuild.mockNvml, GPU_LAYERS_CUDA_LIB: nodeGypBuild.mockCuda, ...host.env });
  const sourceFlags = () => ['--proc-root', host.procRoot, '--cgroup-root', host.cgroupRoot, '--pod-resources-socket', host.podResourcesSocket];

  it('prints namespace/pod/container next to each named process', async () => {
    const run = await runCliAsync(['probe', ...sourceFlags()], env());
    expect(run.status, run.stderr).toBe(0);
    const line = (pid: number) => run.stdout.split('\n').find((l) => l.trimStart().startsWith(`${pid} `)) ?? '';
    expect(line(4150)).toContain('serving/vllm-0/engine');
    expect(line(5150)).toContain('research/trainer-a/main');
    expect(line(6150)).toContain('research/trainer-b/main');
    expect(line(4160)).toContain('python worker-4160.py');
    expect(line(4160)).not.toMatch(/\w+\/\w+\/\w+/);
    expect(run.stdout).toContain(`kubelet pod-resources: ${host.podResourcesSocket}`);
  });

  it('--json carries the field; a socket that is not there is a reason per process, not a failure', async () => {
    const json = await runCliAsync(['probe', '--json', ...sourceFlags()], env());
    expect(json.status, json.stderr).toBe(0);
    const sample = JSON.parse(json.stdout) as LayeredSample;
    expect(processOf(sample, 4150).kubernetes?.pod).toBe('vllm-0');

    const missing = `${host.dir}/no-kubelet/kubelet.sock`;
    const run = await runCliAsync(['probe', '--json', '--proc-root', host.procRoot, '--pod-resources-socket', missing], env());
    expect(run.status, run.stderr).toBe(0);
    const without = JSON.parse(run.stdout) as LayeredSample;
    expect(without.sources.podResources).toMatchObject({ location: missing, ok: false, error: { code: 'POD_RESOURCES_SOCKET_MISSING' } });
    expect(processOf(without, 4150).kubernetes).toBeNull();
    expect(processOf(without, 4150).errors?.kubernetes?.code).toBe('POD_RESOURCES_SOCKET_MISSING');
  });

  it('an empty --pod-resources-socket is a usage error', async () => {
    const run = await runCliAsync(['probe', '--pod-resources-socket', ''], env());
    expect(run.status).toBe(2);
    expect(run.stderr).toContain('--pod-resources-socket needs a path');
  });
});
