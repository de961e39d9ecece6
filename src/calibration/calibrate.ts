/**
 * `gpu-layers calibrate`: measures what a bare CUDA context costs on each device, in a
 * short-lived child process, because the probe itself must never create one. The child retains
 * the primary context on every device through the CUDA driver, then reads through NVML how many
 * bytes its own pid holds on each device, prints that, and exits (taking its contexts along).
 * The parent validates the child's answer, kills it if the driver does not answer in time, and
 * caches the figures per device UUID, driver version and CUDA_MODULE_LOADING.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { loadAddon } from '../binding/addon.js';
import { packageRoot } from '../package-root.js';
import { openProbe } from '../probe/probe.js';
import { normalizeUuid } from '../sample/uuid.js';
import { validate } from '../validation.js';
import { calibrationCacheFile, moduleLoadingOf, writeCalibrationCache, type CalibrationEntry } from '../sources/calibration-cache.js';

const childReportSchema = z.object({
  driverVersion: z.nullable(z.string()),
  moduleLoading: z.string(),
  devices: z.array(
    z.object({
      ordinal: z.int(),
      uuid: z.nullable(z.string()),
      name: z.nullable(z.string()),
      contextBytes: z.nullable(z.int().check(z.nonnegative())),
      error: z.nullable(z.string()),
    }),
  ),
});

export type CalibrationReport = z.infer<typeof childReportSchema> & { cacheFile: string | null };

export interface CalibrateOptions {
  nvmlLibrary?: string;
  cudaLibrary?: string;
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

const retainSchema = z.object({
  loaded: z.boolean(),
  loadError: z.nullable(z.string()),
  initRc: z.optional(z.int()),
  devices: z.array(z.object({ ordinal: z.int(), uuidHex: z.nullable(z.string()), rc: z.int() })),
});

/** The child's side: retain contexts, read our own pid through NVML, report. */
export async function measureOwnContexts(env: Record<string, string | undefined>): Promise<z.infer<typeof childReportSchema>> {
  const addon = loadAddon(env.GPU_LAYERS_ADDON || undefined) as unknown as { retainPrimaryContexts(cudaLibrary: string): unknown };
  const retained = validate(retainSchema, addon.retainPrimaryContexts(env.GPU_LAYERS_CUDA_LIB || 'libcuda.so.1'));
  if (!retained.ok) throw new GpuLayersError('NATIVE_OUTPUT_INVALID', `retainPrimaryContexts: ${retained.message}`);
  const { loaded, loadError, initRc, devices } = retained.data;
  if (!loaded) throw new GpuLayersError('CUDA_UNAVAILABLE', `could not load the CUDA driver library: ${loadError ?? ''}`);
  if (initRc !== 0) throw new GpuLayersError('CUDA_UNAVAILABLE', `cuInit failed with CUDA error ${initRc}: no context can be created`);
  const probe = await openProbe({ cudaLibrary: false, env });
  try {
    const sample = await probe.sample();
    const nvmlDevices = sample.devices.flatMap((d) => [{ uuid: d.uuid, name: d.name, processes: d.processes }, ...(d.mig?.devices ?? [])]);
    return {
      driverVersion: sample.driver.version,
      moduleLoading: moduleLoadingOf(env),
      devices: devices.map((device) => {
        const nvml = nvmlDevices.find((d) => device.uuidHex !== null && normalizeUuid(d.uuid) === device.uuidHex);
        const base = { ordinal: device.ordinal, uuid: nvml?.uuid ?? device.uuidHex, name: nvml?.name ?? null };
        if (device.rc !== 0) return { ...base, contextBytes: null, error: `creating the context failed (CUDA error ${device.rc})` };
        if (nvml === undefined) return { ...base, contextBytes: null, error: 'NVML lists no device with this UUID' };
        const own = nvml.processes?.find((p) => p.pid === process.pid);
        if (own === undefined || own.usedBytes === null) {
          return { ...base, contextBytes: null, error: "NVML does not report this process's memory on the device" };
        }
        return { ...base, contextBytes: own.usedBytes, error: null };
      }),
    };
  } finally {
    await probe.close();
  }
}

function cliPath(): string {
  return path.join(packageRoot(), 'dist', 'cli', 'gpu-layers.cjs');
}

/** Runs the measurement in a child process and caches what it found. */
export async function calibrateContexts(options: CalibrateOptions = {}): Promise<CalibrationReport> {
  const env = { ...(options.env ?? process.env) };
  const timeoutMs = options.timeoutMs ?? 60_000;
  const childEnv: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  // Every device, and the module-loading mode the workloads use (PyTorch's default).
  delete childEnv.CUDA_VISIBLE_DEVICES;
  childEnv.CUDA_MODULE_LOADING = moduleLoadingOf(env);
  if (options.nvmlLibrary !== undefined) childEnv.GPU_LAYERS_NVML_LIB = options.nvmlLibrary;
  if (options.cudaLibrary !== undefined) childEnv.GPU_LAYERS_CUDA_LIB = options.cudaLibrary;

  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath(), 'calibrate', '--child'], { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new GpuLayersError('NVML_TIMEOUT', `the calibration child did not finish within ${timeoutMs} ms (the driver may be wedged)`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new GpuLayersError('NATIVE_FAILURE', `could not start the calibration child: ${error.message}`, { cause: error }));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(stdout);
      else reject(new GpuLayersError('NATIVE_FAILURE', `the calibration child failed (exit ${code}): ${stderr.trim() || stdout.trim()}`));
    });
  });
  let json: unknown;
  try {
    json = JSON.parse(output);
  } catch {
    throw new GpuLayersError('NATIVE_OUTPUT_INVALID', `the calibration child printed no JSON: ${output.slice(0, 200)}`);
  }
  const report = validate(childReportSchema, json);
  if (!report.ok) throw new GpuLayersError('NATIVE_OUTPUT_INVALID', `the calibration child's report: ${report.message}`);
  const { driverVersion, moduleLoading, devices } = report.data;
  const measuredAt = new Date().toISOString();
  const entries: CalibrationEntry[] =
    driverVersion === null
      ? []
      : devices.flatMap((d) =>
          d.uuid !== null && d.contextBytes !== null
            ? [{ uuid: d.uuid, name: d.name, driverVersion, moduleLoading, contextBytes: d.contextBytes, measuredAt }]
            : [],
        );
  const cacheFile = calibrationCacheFile(env);
  if (entries.length > 0) writeCalibrationCache(cacheFile, entries);
  return { ...report.data, cacheFile: entries.length > 0 ? cacheFile : null };
}
