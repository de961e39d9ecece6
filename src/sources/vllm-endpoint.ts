/**
 * One vLLM server given by URL: its /metrics, and, when the URL names this host, the processes
 * listening on its port (read from /proc), which tells which GPU processes are its own. The page
 * is read only once the port is pinned to those processes (vllm-endpoint-pin.ts): a port someone
 * else holds is refused unread.
 */
import { hostname, networkInterfaces } from 'node:os';

import { readPortListeners } from './port-listener.js';
import { readProcessIdentity } from './process-identity.js';
import { readCommandLine } from './process-tree.js';
import { commandLineReceivers, notPinned, pinEndpoint, type EndpointPin, type PinCandidate } from './vllm-endpoint-pin.js';
import { fetchVllmMetrics, metricsUrl, type VllmMetricsResult } from './vllm-metrics.js';

export interface VllmEndpoint {
  metrics: VllmMetricsResult;
  /**
   * Processes listening on the URL's port, when the server is local and they are visible; null
   * when they are not (another host, or the port was refused: then no process is the server's).
   */
  listeners: number[] | null;
  /** How the figures are tied to a process, or why they are refused (null: the URL is not one; absent: not read from a host). */
  pin?: EndpointPin | null;
}

/** What the pinning needs to know of the GPU processes of this sample. */
export interface EndpointProcesses {
  processes: readonly PinCandidate[];
  parents: ReadonlyMap<number, number>;
  /** A process's command line, from the caller's cache where it has one (default: read it). */
  commandOf?: (pid: number) => Promise<string | null>;
}

/** The names and addresses by which a URL means this host. */
export function localAddresses(): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', hostname()]);
  for (const list of Object.values(networkInterfaces())) for (const address of list ?? []) names.add(address.address);
  return names;
}

/** The whole loopback range (127/8, ::1, IPv4-mapped 127/8): all of it reaches this host. */
const LOOPBACK = /^(?:127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/i;

/** The host and port a URL names, or null when it is not an http(s) URL. */
function hostAndPort(endpoint: string): { host: string; port: number } | null {
  try {
    const url = new URL(metricsUrl(endpoint));
    return { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80 };
  } catch {
    return null;
  }
}

async function pinOf(host: string, port: number, procRoot: string, local: ReadonlySet<string>, gpu: EndpointProcesses): Promise<EndpointPin> {
  if (!local.has(host) && !LOOPBACK.test(host)) return notPinned(host);
  const listeners = await readPortListeners(port, procRoot);
  const holders = listeners.ok ? [...new Set(listeners.sockets.flatMap((s) => s.holders))] : [];
  const hidden = listeners.ok && listeners.sockets.some((s) => s.holders.length === 0);
  // Only a holder that cannot be seen needs its owner compared with the receivers'.
  const receivers = hidden ? (holders.length > 0 ? gpu.processes.filter((p) => p.ancestry.some((a) => holders.includes(a))).map((p) => p.pid) : commandLineReceivers(gpu.processes)) : [];
  const commandOf = gpu.commandOf ?? ((pid: number) => readCommandLine(pid, procRoot));
  const [commands, uids] = await Promise.all([
    Promise.all(holders.map(async (pid) => [pid, await commandOf(pid)] as const)),
    Promise.all(receivers.map(async (pid) => [pid, (await readProcessIdentity(pid, procRoot)).writerUids] as const)),
  ]);
  return pinEndpoint({ port, listeners, processes: gpu.processes, parents: gpu.parents, holderCommands: new Map(commands), writerUids: new Map(uids), procRoot });
}

export async function readVllmEndpoint(endpoint: string, timeoutMs: number, procRoot: string, local: ReadonlySet<string>, gpu: EndpointProcesses): Promise<VllmEndpoint> {
  const target = hostAndPort(endpoint);
  // Not a URL: fetchVllmMetrics says so.
  if (target === null) return { metrics: await fetchVllmMetrics(endpoint, timeoutMs), listeners: null, pin: null };
  const pin = await pinOf(target.host, target.port, procRoot, local, gpu);
  if (pin.kind === 'refused') return { metrics: { ok: false, url: metricsUrl(endpoint), error: pin.error }, listeners: null, pin };
  const metrics = await fetchVllmMetrics(endpoint, timeoutMs);
  return { metrics, listeners: pin.kind === 'pinned' ? pin.listeners : pin.kind === 'same-owner' ? [] : null, pin };
}
