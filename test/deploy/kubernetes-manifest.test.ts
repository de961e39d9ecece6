/**
 * The Kubernetes objects that deploy/kubernetes's kustomization renders: the DaemonSet has what the
 * exporter needs on a GPU node (host PIDs, the NVIDIA runtime with NVML only, ptrace read of /proc
 * and nothing else, a read-only root, probes on /healthz, the kubelet's pod-resources socket) and
 * serves on the pod's own address only, to Prometheus only; the Service, ServiceMonitor and
 * PrometheusRule meet it and carry the label kube-prometheus-stack selects them by; the example
 * overlay's settings reach the objects; deploy/ ships in the npm package.
 */
import { execFileSync, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';

import { repoRoot } from '../helpers/paths.js';
import { startServe } from '../helpers/serve.js';
import { find, kustomize } from './kustomize-build.js';

const objects = kustomize('deploy/kubernetes');
const daemonSet = find(objects, 'DaemonSet');
const service = find(objects, 'Service');
const networkPolicy = find(objects, 'NetworkPolicy');
const serviceMonitor = find(objects, 'ServiceMonitor');
const prometheusRule = find(objects, 'PrometheusRule');
const pod = daemonSet.spec.template.spec;
const container = pod.containers[0];
const argv: string[] = [...(container.command ?? []), ...(container.args ?? [])];
const flag = (name: string): string | undefined => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : undefined);
type EnvVar = { name: string; value?: string; valueFrom?: { fieldRef?: { fieldPath: string } } };
const env = container.env as EnvVar[];
const packageVersion = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

describe('the kustomization', () => {
  it('renders the five objects, in no fixed namespace', () => {
    expect(objects.map((o) => `${o.apiVersion} ${o.kind}`).sort()).toEqual([
      'apps/v1 DaemonSet',
      'monitoring.coreos.com/v1 PrometheusRule',
      'monitoring.coreos.com/v1 ServiceMonitor',
      'networking.k8s.io/v1 NetworkPolicy',
      'v1 Service',
    ]);
    for (const o of objects) {
      expect(o.metadata.name, o.kind).toBe('gpu-layers');
      expect(o.metadata.namespace, o.kind).toBeUndefined();
    }
  });

  it('sets the image to the placeholder, tagged with the package version', () => {
    expect(container.image).toBe(`IMAGE_REPOSITORY/gpu-layers:${packageVersion}`);
  });
});

describe('the DaemonSet', () => {
  it('is an apps/v1 DaemonSet whose selector matches its pods', () => {
    expect(pod.containers).toHaveLength(1);
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(daemonSet.spec.selector.matchLabels);
  });

  it('shares the host PID namespace, not the host network, and runs under the NVIDIA runtime on GPU nodes', () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.hostNetwork ?? false).toBe(false);
    expect(pod.runtimeClassName).toBe('nvidia');
    expect(pod.tolerations).toContainEqual(expect.objectContaining({ key: 'nvidia.com/gpu', operator: 'Exists' }));
    expect(Object.keys(pod.nodeSelector ?? {}).some((k) => k.startsWith('nvidia.com/'))).toBe(true);
  });

  it('asks the runtime for every GPU with NVML only', () => {
    const values = Object.fromEntries(env.filter((e) => e.value !== undefined).map((e) => [e.name, e.value]));
    expect(values).toMatchObject({ NVIDIA_VISIBLE_DEVICES: 'all', NVIDIA_DRIVER_CAPABILITIES: 'utility', GPU_LAYERS_STATS_DIR: '/dev/shm/gpu-layers' });
    expect(container.resources?.limits?.['nvidia.com/gpu']).toBeUndefined();
  });

  it('runs `gpu-layers serve` on the pod\'s own IP (the downward API), port 9843, named metrics', () => {
    expect(argv.slice(0, 3)).toEqual(['node', 'node_modules/.bin/gpu-layers', 'serve']);
    expect(flag('--host')).toBe('$(POD_IP)');
    expect(env).toContainEqual({ name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } });
    expect(argv.filter((a) => a.includes('0.0.0.0'))).toEqual([]);
    expect(flag('--port')).toBe('9843');
    expect(container.ports).toEqual([{ name: 'metrics', containerPort: 9843, protocol: 'TCP' }]);
  });

  it('reads the kubelet\'s pod-resources socket from its host folder, mounted read-only', () => {
    const socket = flag('--pod-resources-socket');
    expect(socket).toBe('/var/lib/kubelet/pod-resources/kubelet.sock');
    const volume = (pod.volumes as { name: string; hostPath?: { path: string; type?: string } }[]).find((v) => v.hostPath?.path === '/var/lib/kubelet/pod-resources');
    expect(volume?.hostPath?.type).toBe('Directory');
    const mount = (container.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[]).find((m) => m.name === volume!.name);
    expect(mount).toEqual({ name: volume!.name, mountPath: path.dirname(socket!), readOnly: true });
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
    const mounts = container.volumeMounts as { name: string; mountPath: string; readOnly?: boolean }[];
    const writable = mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath);
    expect(writable).toEqual(expect.arrayContaining(['/tmp', flag('--flight-dir')]));
    expect(writable).toContain(env.find((e) => e.name === 'GPU_LAYERS_CACHE_DIR')?.value);
  });

  it('mounts the companion\'s stats folder from the host, read-only, and every volume it declares', () => {
    const volume = (pod.volumes as { name: string; hostPath?: { path: string } }[]).find((v) => v.hostPath?.path === '/dev/shm/gpu-layers');
    expect(volume).toBeDefined();
    expect(container.volumeMounts).toContainEqual({ name: volume!.name, mountPath: '/dev/shm/gpu-layers', readOnly: true });
    const mounted = (container.volumeMounts as { name: string }[]).map((m) => m.name).sort();
    expect((pod.volumes as { name: string }[]).map((v) => v.name).sort()).toEqual(mounted);
  });

  it('asks for little CPU and memory, with limits', () => {
    const { requests, limits } = container.resources;
    for (const r of [requests, limits]) expect(Object.keys(r).sort()).toEqual(['cpu', 'memory']);
    expect(requests.memory).toMatch(/^\d+Mi$/);
    expect(Number.parseInt(limits.memory, 10)).toBeLessThanOrEqual(512);
  });

  it('holds V8\'s old space under the memory limit, with room for the rest of the process', () => {
    const options = (container.env as { name: string; value?: string }[]).find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';
    const cap = /--max-old-space-size=(\d+)/.exec(options);
    expect(cap, 'NODE_OPTIONS caps the old space').not.toBeNull();
    expect(container.resources.limits.memory).toMatch(/^\d+Mi$/);
    // Code, the young generation, buffers and the addon need their share beside the heap.
    expect(Number(cap![1]) + 64).toBeLessThanOrEqual(Number.parseInt(container.resources.limits.memory, 10));
  });
});

describe('the NetworkPolicy', () => {
  it('selects the exporter\'s pods and lets in Prometheus only, on the metrics port only', () => {
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(networkPolicy.spec.podSelector.matchLabels);
    expect(networkPolicy.spec.policyTypes).toEqual(['Ingress']);
    expect(networkPolicy.spec.ingress).toHaveLength(1);
    const [rule] = networkPolicy.spec.ingress;
    expect(rule.ports).toEqual([{ port: 'metrics', protocol: 'TCP' }]);
    // One peer with both selectors (pods of that name in that namespace), not two peers (which
    // would let in every pod of the namespace, and pods of that name anywhere).
    expect(rule.from).toEqual([
      {
        namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } },
        podSelector: { matchLabels: { 'app.kubernetes.io/name': 'prometheus' } },
      },
    ]);
  });
});

describe('the Service, the ServiceMonitor and the PrometheusRule', () => {
  it('is a headless Service selecting the pods, with the metrics port by name', () => {
    expect(service.spec.clusterIP).toBe('None');
    expect(daemonSet.spec.template.metadata.labels).toMatchObject(service.spec.selector);
    expect(service.spec.ports).toEqual([{ name: 'metrics', port: 9843, targetPort: 'metrics', protocol: 'TCP' }]);
  });

  it('scrapes the Service\'s metrics port under the job name the alerts expect', () => {
    expect(service.metadata.labels).toMatchObject(serviceMonitor.spec.selector.matchLabels);
    expect(serviceMonitor.spec.endpoints).toContainEqual(expect.objectContaining({ port: 'metrics', path: '/metrics' }));
    // The Prometheus Operator names the job after the Service: up{job="gpu-layers"}.
    expect(service.metadata.name).toBe('gpu-layers');
    expect(readFileSync(path.join(repoRoot, 'deploy/prometheus/gpu-layers.rules.yml'), 'utf8')).toContain('up{job="gpu-layers"}');
  });

  it('drops the exporter pod\'s own namespace, pod and container target labels, which would rename the processes\' Kubernetes labels', () => {
    const relabelings: { action?: string; regex?: string }[] = serviceMonitor.spec.endpoints[0].relabelings;
    const dropped = relabelings.filter((r) => r.action === 'labeldrop').map((r) => new RegExp(`^(?:${r.regex})$`));
    for (const label of ['namespace', 'pod', 'container']) expect(dropped.some((re) => re.test(label)), label).toBe(true);
    // The labels the rules aggregate by stay.
    for (const label of ['instance', 'job', 'gpu', 'uuid']) expect(dropped.some((re) => re.test(label)), label).toBe(false);
  });

  it('labels the ServiceMonitor and the PrometheusRule for kube-prometheus-stack\'s default selectors', () => {
    for (const o of [serviceMonitor, prometheusRule]) expect(o.metadata.labels?.release, o.kind).toBe('kube-prometheus-stack');
    // Only those two: the label is the Prometheus's selector, not the exporter's.
    for (const o of [daemonSet, service, networkPolicy]) expect(o.metadata.labels?.release, o.kind).toBeUndefined();
    expect(daemonSet.spec.template.metadata.labels.release).toBeUndefined();
  });

  it('carries the rules file\'s groups in the PrometheusRule', () => {
    const rules = parse(readFileSync(path.join(repoRoot, 'deploy/prometheus/gpu-layers.rules.yml'), 'utf8')) as { groups: unknown[] };
    expect(prometheusRule.spec).toEqual({ groups: rules.groups });
  });
});

describe('the example overlay', () => {
  const overlay = kustomize('deploy/kubernetes-overlay');

  it('sets the namespace, the image, the release label and Prometheus\'s namespace', () => {
    expect(overlay.map((o) => o.kind).sort()).toEqual(objects.map((o) => o.kind).sort());
    for (const o of overlay) expect(o.metadata.namespace, o.kind).toBe('gpu-monitoring');
    expect(find(overlay, 'DaemonSet').spec.template.spec.containers[0].image).toBe(`registry.example.com/gpu-layers:${packageVersion}`);
    for (const kind of ['ServiceMonitor', 'PrometheusRule']) expect(find(overlay, kind).metadata.labels?.release, kind).toBe('prometheus');
    expect(find(overlay, 'NetworkPolicy').spec.ingress[0].from[0].namespaceSelector.matchLabels).toEqual({ 'kubernetes.io/metadata.name': 'observability' });
  });
});

describe('the exporter as the DaemonSet starts it', () => {
  const children: ChildProcess[] = [];
  const work = mkdtempSync(path.join(tmpdir(), 'gpu-layers-daemonset-'));
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
  });

  it('accepts every argument, and listens on the address that $(POD_IP) becomes and no other', async () => {
    // The kubelet's expansion of $(VAR) in args, from this container's env; 127.0.0.2 stands in
    // for the pod IP (every 127/8 address is this machine's own).
    const fieldValues: Record<string, string> = { 'status.podIP': '127.0.0.2' };
    const vars = Object.fromEntries(env.map((e) => [e.name, e.value ?? fieldValues[e.valueFrom?.fieldRef?.fieldPath ?? '']]));
    // The node's folders that the pod mounts, as empty folders here; any free port for 9843.
    const mounts = (container.volumeMounts as { mountPath: string }[]).map((m) => m.mountPath).sort((a, b) => b.length - a.length);
    const local = (arg: string): string => {
      const mount = mounts.find((m) => arg === m || arg.startsWith(`${m}/`));
      if (mount === undefined) return arg;
      const folder = path.join(work, mount);
      mkdirSync(folder, { recursive: true });
      return folder + arg.slice(mount.length);
    };
    const args = (container.args as string[]).map((arg, i, all) => (all[i - 1] === '--port' ? '0' : local(arg.replace(/\$\((\w+)\)/g, (_, name: string) => vars[name] ?? `$(${name})`))));
    expect(args[args.indexOf('--host') + 1]).toBe('127.0.0.2');
    expect(container.command).toEqual(['node', 'node_modules/.bin/gpu-layers']);
    const scenario = path.join(repoRoot, 'test/fixtures/real/h200.scenario');
    expect(args[0]).toBe('serve');
    const serve = await startServe(args.slice(1), scenario, { GPU_LAYERS_CACHE_DIR: path.join(work, 'cache') }, 15_000);
    children.push(serve.child);
    expect(serve.host).toBe('127.0.0.2');
    const port = serve.port;
    const metrics = await fetch(`http://127.0.0.2:${port}/metrics`);
    expect(metrics.status).toBe(200);
    const uuid = /^uuid (\S+)$/m.exec(readFileSync(scenario, 'utf8'))![1]!;
    expect(await metrics.text()).toMatch(new RegExp(`^gpu_layers_\\w+\\{[^}]*uuid="${uuid}"`, 'm'));
    // Loopback's usual address is another address of the same machine: refused, as 0.0.0.0 would not.
    const refused = await new Promise<string>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port });
      socket.on('connect', () => {
        socket.destroy();
        resolve('connected');
      });
      socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    });
    expect(refused).toBe('ECONNREFUSED');
  });
});

describe('the npm package', () => {
  it('ships deploy/: the kustomizations, the objects they name, the rules and the dashboard', () => {
    const listing = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: repoRoot, encoding: 'utf8' });
    const packed = new Set((JSON.parse(listing)[0].files as { path: string }[]).map((f) => f.path));
    const kustomizations = ['deploy/kubernetes/kustomization.yaml', 'deploy/kubernetes-overlay/kustomization.yaml'];
    const needed = new Set(['deploy/README.md', 'deploy/prometheus/gpu-layers.rules.yml', 'deploy/grafana/gpu-layers.dashboard.json', ...kustomizations]);
    for (const file of kustomizations) {
      const k = parse(readFileSync(path.join(repoRoot, file), 'utf8')) as { resources?: string[]; patchesJson6902?: { path: string }[] };
      for (const name of [...(k.resources ?? []), ...(k.patchesJson6902 ?? []).map((p) => p.path)]) needed.add(path.join(path.dirname(file), name));
    }
    expect([...needed].filter((f) => !packed.has(f))).toEqual([]);
  });
});
