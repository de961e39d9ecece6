/**
 * What `gpu-layers doctor` looks at on this host: whether the addon loads, what NVML and every
 * layer source say (through the same probe and readers as `gpu-layers probe`), which NVIDIA
 * device files this user may open, which pids /proc shows, and, with --hf-config and one --vllm
 * server, what the KV block alignment check needs beyond the sample (the model's geometry and the
 * server's cache dtype).
 */
import { constants } from 'node:fs';
import { access, readdir } from 'node:fs/promises';

import { isGpuLayersError, GpuLayersError } from '../errors.js';
import type { LayerOptions } from '../layers/read-layers.js';
import { loadAddon } from '../binding/addon.js';
import { locateAddon } from '../binding/binary-location.js';
import { openMonitor } from '../monitor/monitor.js';
import type { ProbeOptions } from '../probe/options.js';
import type { DoctorFacts } from './doctor-checks.js';

function asError(error: unknown): GpuLayersError {
  return isGpuLayersError(error) ? error : new GpuLayersError('NATIVE_FAILURE', (error as Error).message ?? String(error));
}

async function deviceFiles(): Promise<DoctorFacts['deviceFiles']> {
  const names = (await readdir('/dev').catch(() => [] as string[])).filter((name) => /^nvidia(ctl|\d+)$/.test(name)).sort();
  const paths = names.length > 0 ? names.map((name) => `/dev/${name}`) : ['/dev/nvidiactl'];
  return Promise.all(
    paths.map(async (path) => {
      try {
        await access(path, constants.R_OK | constants.W_OK);
        return { path, access: 'ok' as const };
      } catch (error) {
        return { path, access: (error as NodeJS.ErrnoException).code === 'ENOENT' ? ('missing' as const) : ('denied' as const) };
      }
    }),
  );
}

/**
 * The model config and the cache dtype of the one server it is used for (the layers use a config
 * with one server only). Both are read again here: the layered sample keeps neither the geometry
 * nor cache_dtype. Loaded only when asked, like the layers' vLLM sources (the Prometheus parser).
 */
async function kvCache(layerOptions: LayerOptions): Promise<DoctorFacts['kvCache']> {
  const servers = layerOptions.vllm ?? [];
  if (layerOptions.hfConfig === undefined || servers.length !== 1) return null;
  const [{ readHfConfig }, { fetchVllmMetrics }] = await Promise.all([import('../sources/hf-config.js'), import('../sources/vllm-metrics.js')]);
  const [config, metrics] = await Promise.all([readHfConfig(layerOptions.hfConfig), fetchVllmMetrics(servers[0]!, layerOptions.vllmTimeoutMs ?? 2000)]);
  // A config that cannot be read is the Model config check's to report.
  if (!config.ok) return null;
  const cacheDtype = metrics.ok && metrics.engines.length === 1 ? metrics.engines[0]!.cacheDtype : null;
  return { geometry: config.geometry, metricsUrl: metrics.url, cacheDtype };
}

export async function gatherFacts(probeOptions: ProbeOptions, layerOptions: LayerOptions): Promise<DoctorFacts> {
  const env = probeOptions.env ?? process.env;
  // Named by the caller or the environment, else found by the one rule (binary-location.ts):
  // with none found, loadAddon says why (no build, musl, another architecture) as probe does.
  const named = probeOptions.addonPath ?? (env.GPU_LAYERS_ADDON || undefined);
  const addonPath = named ?? locateAddon() ?? undefined;
  let addon: DoctorFacts['addon'];
  try {
    loadAddon(addonPath);
    addon = { ok: true, path: addonPath! };
  } catch (error) {
    addon = { ok: false, error: asError(error) };
  }
  // Read beside the monitor's sample, so a slow server costs its deadline once, not twice (the
  // readers return their failures; the catch keeps a pending rejection from going unhandled).
  const kvRead = addon.ok ? kvCache(layerOptions).catch(() => null) : Promise.resolve(null);
  let probe: DoctorFacts['probe'] = null;
  if (addon.ok) {
    try {
      const monitor = await openMonitor({ probe: { ...probeOptions, addonPath }, layers: layerOptions });
      try {
        probe = { ok: true, info: monitor.probe.info, sample: await monitor.sample() };
      } finally {
        await monitor.close();
      }
    } catch (error) {
      probe = { ok: false, error: asError(error) };
    }
  }
  const kv = await kvRead;
  const procRoot = layerOptions.procRoot ?? '/proc';
  const visiblePids = new Set((await readdir(procRoot).catch(() => [] as string[])).filter((n) => /^\d+$/.test(n)).map(Number));
  return { addon, probe, deviceFiles: await deviceFiles(), visiblePids, cudaVisibleDevices: env.CUDA_VISIBLE_DEVICES, kvCache: kv };
}
