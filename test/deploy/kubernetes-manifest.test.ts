/**
 * The Kubernetes manifests in deploy/kubernetes, parsed: the DaemonSet has what the exporter
 * needs on a GPU node (host PIDs, the NVIDIA runtime with NVML only, ptrace read of /proc and
 * nothing else, a read-only root, probes on /healthz) and the Service and ServiceMonitor meet it
 * on the named port.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';

import { repoRoot } from '../helpers/paths.js';

const dir = path.join(repoRoot, 'deploy/kubernetes');

/** The YAML documents of a manifest file, as plain objects (checked field by field below). */
function documents(file: string): any[] {
  return parseAllDocuments(readFileSync(path.join(dir, file), 'utf8')).map((d) => {
    expect(d.errors, file).toEqual([]);
    return d.toJS();
  });
}

const manifests = documents('gpu-layers-daemonset.yaml');
const daemonSet = manifests.find((d) => d.kind === 'DaemonSet');
const service = manifests.find((d) => d.kind === 'Service');
const serviceMonitor = documents('gpu-layers-servicemonitor.yaml').find((d) => d.kind === 'ServiceMonitor');
const pod = daemonSet?.spec?.template?.spec;
const container = pod?.containers?.[0];

describe('the DaemonSet', () => {
  it('is an apps/v1 DaemonSet whose selector matches its pods, in no fixed namespace', () => {
    expect(daemonSet).toMatchObject({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'gpu-layers' } });
    expect(pod.containers).toHaveLength(1);
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(daemonSet.spec.selector.matchLabels);
    for (const d of [...manifests, serviceMonitor]) expect(d.metadata.namespace, d.kind).toBeUndefined();
  });

  it('shares the host PID namespace and runs under the NVIDIA runtime on GPU nodes', () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.runtimeClassName).toBe('nvidia');
    expect(pod.tolerations).toContainEqual(expect.objectContaining({ key: 'nvidia.com/gpu', operator: 'Exists' }));
    expect(Object.keys(pod.nodeSelector ?? {}).some((k) => k.startsWith('nvidia.com/'))).toBe(true);
  });

  it('asks the runtime for every GPU with NVML only', () => {
    const env = Object.fromEntries((container.env as { name: string; value: string }[]).map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ NVIDIA_VISIBLE_DEVICES: 'all', NVIDIA_DRIVER_CAPABILITIES: 'utility', GPU_LAYERS_STATS_DIR: '/dev/shm/gpu-layers' });
    expect(container.resources?.limits?.['nvidia.com/gpu']).toBeUndefined();
  });

  it('runs `gpu-layers serve` on all interfaces, port 9843, named metrics', () => {
    const argv: string[] = [...(container.command ?? []), ...(container.args ?? [])];
    expect(argv.slice(0, 3)).toEqual(['node', 'node_modules/.bin/gpu-layers', 'serve']);
    expect(argv[argv.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(argv[argv.indexOf('--port') + 1]).toBe('9843');
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 9843, protocol: 'TCP' }]);
  });

  it('probes /healthz on the metrics port', () => {
    for (const probe of [container.readinessProbe, container.livenessProbe]) {
      expect(probe?.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
    }
  });

  it('drops every capability but SYS_PTRACE, on a read-only root filesystem', () => {
    const sc = container.securityContext;
    expect(sc.readOnlyRootFilesystem).toBe(true);
    expect(sc.allowPrivilegeEscalation).toBe(false);
    expect(sc.privileged ?? false).toBe(false);
    expect(sc.capabilities).toEqual({ drop: ['ALL'], add: ['SYS_PTRACE'] });
    // Every path it writes is a volume.
    const mounts = (container.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[]);
    const writable = mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath);
    expect(writable).toEqual(expect.arrayContaining(['/tmp']));
    const cacheDir = (container.env as { name: string; value: string }[]).find((e) => e.name === 'GPU_LAYERS_CACHE_DIR')?.value;
    expect(writable).toContain(cacheDir);
  });

  it('mounts the companion\'s stats folder from the host, read-only', () => {
    const volume = (pod.volumes as { name: string; hostPath?: { path: string } }[]).find((v) => v.hostPath?.path === '/dev/shm/gpu-layers');
    expect(volume).toBeDefined();
    expect(container.volumeMounts).toContainEqual({ name: volume!.name, mountPath: '/dev/shm/gpu-layers', readOnly: true });
    for (const v of pod.volumes as { name: string }[]) expect(container.volumeMounts.map((m: { name: string }) => m.name), v.name).toContain(v.name);
  });

  it('asks for little CPU and memory, with limits', () => {
    const { requests, limits } = container.resources;
    for (const r of [requests, limits]) expect(Object.keys(r).sort()).toEqual(['cpu', 'memory']);
    expect(requests.memory).toMatch(/^\d+Mi$/);
    expect(Number.parseInt(limits.memory, 10)).toBeLessThanOrEqual(512);
  });

  it('names no real image registry: the image is a placeholder to replace', () => {
    expect(container.image).toMatch(/^[A-Z_]+\/gpu-layers:\d+\.\d+\.\d+$/);
  });
});

describe('the Service and the ServiceMonitor', () => {
  it('is a headless Service selecting the pods, with the metrics port by name', () => {
    expect(service.spec.clusterIP).toBe('None');
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(service.spec.ports).toEqual([{ name: 'metrics', port: 9843, targetPort: 'metrics', protocol: 'TCP' }]);
  });

  it('scrapes the Service\'s metrics port under the job name the alerts expect', () => {
    expect(serviceMonitor.apiVersion).toBe('monitoring.coreos.com/v1');
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
    expect(serviceMonitor.spec.endpoints).toContainEqual(expect.objectContaining({ port: 'metrics', path: '/metrics' }));
    // The Prometheus Operator names the job after the Service: up{job="gpu-layers"}.
    expect(service.metadata.name).toBe('gpu-layers');
    expect(readFileSync(path.join(repoRoot, 'deploy/prometheus/gpu-layers.rules.yml'), 'utf8')).toContain('up{job="gpu-layers"}');
  });
});
