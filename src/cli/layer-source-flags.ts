/**
 * The flags that name where the layers come from (companion folder, vLLM servers and log, model
 * config, the /proc and cgroup filesystem to read, the kubelet's pod-resources socket), shared by
 * every verb that samples, so all read the same sources the same way.
 */
import type { LayerOptions } from '../layers/read-layers.js';
import { GpuLayersError } from '../errors.js';
import { parseDuration, parseHttpUrl } from './parse-flags.js';

export const LAYER_SOURCE_FLAGS = {
  'stats-dir': { type: 'string' },
  vllm: { type: 'string', multiple: true },
  'vllm-log': { type: 'string' },
  'hf-config': { type: 'string' },
  'vllm-timeout': { type: 'string' },
  'proc-root': { type: 'string' },
  'cgroup-root': { type: 'string' },
  'pod-resources-socket': { type: 'string' },
} as const;

interface LayerSourceValues {
  'stats-dir'?: string;
  vllm?: string[];
  'vllm-log'?: string;
  'hf-config'?: string;
  'vllm-timeout'?: string;
  'proc-root'?: string;
  'cgroup-root'?: string;
  'pod-resources-socket'?: string;
}

/** Without the flag the kubelet's default socket is read where it exists (read-layers.ts). */
function podResourcesSocket(value: string): string {
  if (value === '') throw new GpuLayersError('INVALID_OPTIONS', '--pod-resources-socket needs a path (the kubelet\'s is /var/lib/kubelet/pod-resources/kubelet.sock)');
  return value;
}

export function layerOptionsFromFlags(flags: LayerSourceValues, env: Record<string, string | undefined>): LayerOptions {
  return {
    env,
    ...(flags['stats-dir'] !== undefined ? { statsDir: flags['stats-dir'] } : {}),
    ...(flags.vllm !== undefined ? { vllm: flags.vllm.map((url) => parseHttpUrl(url, '--vllm')) } : {}),
    ...(flags['vllm-log'] !== undefined ? { vllmLog: flags['vllm-log'] } : {}),
    ...(flags['hf-config'] !== undefined ? { hfConfig: flags['hf-config'] } : {}),
    ...(flags['vllm-timeout'] !== undefined ? { vllmTimeoutMs: parseDuration(flags['vllm-timeout'], '--vllm-timeout') } : {}),
    ...(flags['proc-root'] !== undefined ? { procRoot: flags['proc-root'] } : {}),
    ...(flags['cgroup-root'] !== undefined ? { cgroupRoot: flags['cgroup-root'] } : {}),
    ...(flags['pod-resources-socket'] !== undefined ? { podResourcesSocket: podResourcesSocket(flags['pod-resources-socket']) } : {}),
  };
}
