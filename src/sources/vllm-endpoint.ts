/**
 * One vLLM server given by URL: its /metrics, and, when the URL names this host, the processes
 * listening on its port (read from /proc), which tells which GPU processes are its own.
 */
import { hostname, networkInterfaces } from 'node:os';

import { listeningPids } from './process-tree.js';
import { fetchVllmMetrics, metricsUrl, type VllmMetricsResult } from './vllm-metrics.js';

export interface VllmEndpoint {
  metrics: VllmMetricsResult;
  /** Processes listening on the URL's port, when the server is local and visible; else null. */
  listeners: number[] | null;
}

/** The names and addresses by which a URL means this host. */
export function localAddresses(): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '::1', '0.0.0.0', '::', hostname()]);
  for (const list of Object.values(networkInterfaces())) for (const address of list ?? []) names.add(address.address);
  return names;
}

export async function readVllmEndpoint(endpoint: string, timeoutMs: number, procRoot: string, local: ReadonlySet<string>): Promise<VllmEndpoint> {
  const metrics = await fetchVllmMetrics(endpoint, timeoutMs);
  let listeners: number[] | null = null;
  try {
    const url = new URL(metricsUrl(endpoint));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (local.has(host)) {
      const port = url.port !== '' ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
      listeners = await listeningPids(port, procRoot);
    }
  } catch {
    // not a URL: fetchVllmMetrics already said so
  }
  return { metrics, listeners };
}
