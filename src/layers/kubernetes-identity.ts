/**
 * Which Kubernetes container each GPU process runs in, by name: the kubelet's device assignments
 * (pod-resources: namespace, pod, container -> device ids) joined with the GPU NVML lists the
 * process on, checked against the pod UID in the process's cgroup. Pure.
 *
 * The rules, and why:
 * - A device id is matched to NVML's UUID after dropping a "::N" replica suffix (the NVIDIA
 *   device plugin names time-sliced and MPS replicas "GPU-<uuid>::N"; dcgm-exporter,
 *   internal/pkg/transformation/kubernetes.go, strips it the same way). The resource's name is not
 *   looked at: an id equal to a GPU's UUID is that GPU under any name (nvidia.com/gpu,
 *   nvidia.com/gpu.shared, nvidia.com/mig-1g.10gb). Ids in other forms (GKE's "nvidia0") match
 *   nothing.
 * - A process whose cgroup names no pod is not in one, whatever its GPU is assigned to.
 * - A GPU assigned to one container names that container, unless processes of two pods (two
 *   cgroup pod UIDs) use it: then one of them runs without having requested it (privileged, or
 *   NVIDIA_VISIBLE_DEVICES=all) and which one is not known, so neither is named.
 * - pod-resources has no pod UIDs, so a GPU shared by several containers names one only through
 *   UIDs learned elsewhere: a pod whose process was named on a GPU of its own has its UID known,
 *   which names its processes on the shared GPU and rules it out for the other pods' processes.
 *   Learning goes in rounds, each from the round before, so the outcome does not depend on the
 *   order of the processes. Otherwise the process is null with the candidates in the reason.
 */
import { sourceError } from '../sample/field-errors.js';
import type { FieldError, Sample } from '../sample/schema.js';
import type { PodResources } from '../sources/kubelet-pod-resources.js';
import type { HostLayer, KubernetesIdentity } from './schema.js';

export type KubernetesIdentityResult = { identity: KubernetesIdentity; error: null } | { identity: null; error: FieldError };

interface Assignee {
  namespace: string;
  pod: string;
  container: string;
  /** The ids it was assigned on one GPU, as the kubelet wrote them. */
  deviceIds: string[];
}

/** The pod a process's cgroup names: its UID, none (not in a pod), or unknown (not read). */
type CgroupPod = { uid: string } | 'none' | 'unknown';

interface Candidate {
  pid: number;
  uuids: string[];
  assignees: Assignee[];
  pod: CgroupPod;
}

const podKey = (a: Assignee): string => `${a.namespace}/${a.pod}`;
const containerKey = (a: Assignee): string => `${a.namespace}/${a.pod}/${a.container}`;
const uidOf = (pod: CgroupPod): string | null => (typeof pod === 'object' ? pod.uid : null);

/** The GPU UUID a device id stands for: the id less a "::N" replica suffix. */
export function deviceUuidOf(deviceId: string): string {
  const cut = deviceId.indexOf('::');
  return cut === -1 ? deviceId : deviceId.slice(0, cut);
}

function assigneesByUuid(pods: readonly PodResources[]): Map<string, Assignee[]> {
  const byUuid = new Map<string, Map<string, Assignee>>();
  for (const pod of pods) {
    for (const container of pod.containers) {
      for (const devices of container.devices) {
        for (const id of devices.deviceIds) {
          const uuid = deviceUuidOf(id);
          let assignees = byUuid.get(uuid);
          if (assignees === undefined) byUuid.set(uuid, (assignees = new Map()));
          const key = `${pod.namespace}/${pod.name}/${container.name}`;
          const assignee = assignees.get(key) ?? { namespace: pod.namespace, pod: pod.name, container: container.name, deviceIds: [] };
          assignee.deviceIds.push(id);
          assignees.set(key, assignee);
        }
      }
    }
  }
  return new Map([...byUuid].map(([uuid, assignees]) => [uuid, [...assignees.values()]]));
}

/** Each pid's GPUs: the devices and MIG devices NVML lists it under (in MIG mode, both). */
function uuidsByPid(sample: Sample): Map<number, (string | null)[]> {
  const byPid = new Map<number, (string | null)[]>();
  const add = (pid: number, uuid: string | null): void => {
    const uuids = byPid.get(pid) ?? [];
    if (!uuids.includes(uuid)) uuids.push(uuid);
    byPid.set(pid, uuids);
  };
  for (const device of sample.devices) {
    for (const p of device.processes ?? []) add(p.pid, device.uuid);
    for (const mig of device.mig?.devices ?? []) for (const p of mig.processes ?? []) add(p.pid, mig.uuid);
  }
  return byPid;
}

function cgroupPodOf(host: HostLayer | undefined): CgroupPod {
  if (host === undefined || host.errors.host !== undefined) return 'unknown';
  if (host.podUid !== null) return { uid: host.podUid };
  // containerId's reason is NO_CONTAINER when the cgroup was read and names none; any other
  // reason is a cgroup file that could not be read.
  const why = host.errors.containerId;
  return why === undefined || why.code === 'NO_CONTAINER' ? 'none' : 'unknown';
}

function names(assignees: readonly Assignee[]): string {
  return assignees.map(containerKey).join(', ');
}

function identity(a: Assignee, matchedBy: KubernetesIdentity['matchedBy']): KubernetesIdentityResult {
  return { identity: { namespace: a.namespace, pod: a.pod, container: a.container, deviceIds: a.deviceIds, matchedBy }, error: null };
}

function unmatched(code: string, message: string): KubernetesIdentityResult {
  return { identity: null, error: sourceError(code, message) };
}

/** Why a process that no round named stays unnamed. */
function unresolvedReason(c: Candidate, knownUid: ReadonlyMap<string, string>): KubernetesIdentityResult {
  const gpus = c.uuids.join(' and ');
  const uid = uidOf(c.pod);
  const others = c.assignees.filter((a) => uid !== null && knownUid.has(podKey(a)) && knownUid.get(podKey(a)) !== uid);
  if (others.length === c.assignees.length) {
    const known = others.map((a) => `${podKey(a)} is pod ${knownUid.get(podKey(a))}`).join(', ');
    return unmatched('POD_NOT_ASSIGNED', `its pod (UID ${uid}) is none of those the kubelet assigned ${gpus} to (${known}): it uses the GPU without having requested it (privileged, or NVIDIA_VISIBLE_DEVICES=all)`);
  }
  const open = c.assignees.filter((a) => !others.includes(a));
  const cgroup = c.pod === 'unknown' ? "; its cgroup's pod UID is not known here either (the host's /proc: --proc-root)" : '';
  return unmatched('POD_AMBIGUOUS', `${gpus} is shared by ${open.length} containers: ${names(open)}; the kubelet's pod-resources API names no pod UID, and nothing else tells which this process is${cgroup}`);
}

/**
 * The Kubernetes identity of every GPU process in `sample`, by pid, from the kubelet's pod list
 * and (where the host layer was read) each process's cgroup pod UID.
 */
export function kubernetesIdentities(sample: Sample, host: ReadonlyMap<number, HostLayer> | null, pods: readonly PodResources[]): Map<number, KubernetesIdentityResult> {
  const byUuid = assigneesByUuid(pods);
  const results = new Map<number, KubernetesIdentityResult>();
  let open: Candidate[] = [];
  for (const [pid, uuids] of uuidsByPid(sample)) {
    const pod = cgroupPodOf(host?.get(pid));
    if (pod === 'none') {
      results.set(pid, unmatched('NOT_IN_POD', 'not in a Kubernetes pod: its cgroup names none'));
      continue;
    }
    const known = uuids.filter((u): u is string => u !== null);
    if (known.length === 0) {
      results.set(pid, unmatched('INPUT_MISSING', 'NVML gave no UUID for its GPU, the key of the kubelet\'s device assignments'));
      continue;
    }
    const byKey = new Map<string, Assignee>();
    for (const uuid of known) {
      for (const a of byUuid.get(uuid) ?? []) {
        const seen = byKey.get(containerKey(a));
        byKey.set(containerKey(a), seen === undefined ? a : { ...seen, deviceIds: [...seen.deviceIds, ...a.deviceIds] });
      }
    }
    if (byKey.size === 0) {
      results.set(pid, unmatched('POD_NOT_ASSIGNED', `the kubelet assigned ${known.join(' and ')} to no container (${pods.length} pods listed): a process outside Kubernetes, or one in a pod that uses the GPU without having requested it (privileged, or NVIDIA_VISIBLE_DEVICES=all)`));
      continue;
    }
    open.push({ pid, uuids: known, assignees: [...byKey.values()], pod });
  }

  // What the rounds learn: each pod's UID, and the pod of each UID.
  const knownUid = new Map<string, string>();
  const podOfUid = new Map<string, string>();
  for (;;) {
    const proposals = new Map<string, { candidate: Candidate; assignee: Assignee }[]>();
    for (const c of open) {
      const uid = uidOf(c.pod);
      const fits =
        uid === null
          ? c.assignees
          : podOfUid.has(uid)
            ? c.assignees.filter((a) => podKey(a) === podOfUid.get(uid))
            : c.assignees.filter((a) => !knownUid.has(podKey(a)) || knownUid.get(podKey(a)) === uid);
      if (fits.length !== 1) continue;
      const assignee = fits[0]!;
      const list = proposals.get(podKey(assignee)) ?? [];
      list.push({ candidate: c, assignee });
      proposals.set(podKey(assignee), list);
    }
    const decided = new Set<Candidate>();
    for (const [pod, list] of proposals) {
      const uids = new Set(list.map((p) => uidOf(p.candidate.pod)).filter((u): u is string => u !== null));
      const learned = knownUid.get(pod);
      if (learned !== undefined) uids.add(learned);
      if (uids.size > 1) {
        for (const { candidate } of list) {
          results.set(candidate.pid, unmatched('POD_CONFLICT', `processes of ${uids.size} pods (UIDs ${[...uids].sort().join(', ')}) use ${candidate.uuids.join(' and ')}, which the kubelet assigned to ${pod} alone among them: one uses it without having requested it, and which one is ${pod} is not known`));
          decided.add(candidate);
        }
        continue;
      }
      const uid = [...uids][0];
      if (uid !== undefined) {
        knownUid.set(pod, uid);
        podOfUid.set(uid, pod);
      }
      for (const { candidate, assignee } of list) {
        results.set(candidate.pid, identity(assignee, candidate.assignees.length === 1 ? 'sole-assignee' : 'pod-uid'));
        decided.add(candidate);
      }
    }
    if (decided.size === 0) break;
    open = open.filter((c) => !decided.has(c));
  }
  for (const c of open) results.set(c.pid, unresolvedReason(c, knownUid));
  return results;
}
