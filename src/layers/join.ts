/**
 * Joins one driver sample with what the other sources said about its processes: per process the
 * driver, context, allocator and framework layers, the gaps, and the host split; per device the
 * context size and the memory no process accounts for. Pure: every input was read (and checked)
 * before, so recorded inputs give the same result as live ones.
 */
import { lookupContextBytes, type CalibrationEntry } from '../sources/calibration-cache.js';
import { sourceError } from '../sample/field-errors.js';
import type { Device, FieldError, FieldErrors, GpuProcess, MigDevice, Sample } from '../sample/schema.js';
import type { CompanionResult } from '../sources/companion.js';
import { allocatorLayerOf } from './allocator-layer.js';
import { computeGaps } from './gaps.js';
import { withProcessAllocators } from './host-layer.js';
import type { AllocatorLayer, HostLayer, LayeredDevice, LayeredMigDevice, LayeredProcess, LayeredSample } from './schema.js';
import type { KubernetesIdentityResult } from './kubernetes-identity.js';
import type { FrameworkResult } from './vllm-attribution.js';

export interface LayerInputs {
  /** Host layers by pid; null when the host layer was not asked for. */
  host: ReadonlyMap<number, HostLayer> | null;
  /** Companion files by pid; null when no stats folder is configured. */
  companion: ReadonlyMap<number, CompanionResult> | null;
  framework: ReadonlyMap<number, FrameworkResult>;
  calibration: { entries: readonly CalibrationEntry[]; moduleLoading: string; error: FieldError | null };
  /** Each process's pod and container by pid; absent where pod-resources was not read. */
  kubernetes?: ReadonlyMap<number, KubernetesIdentityResult>;
  sources: Omit<LayeredSample['sources'], 'podResources'> & { podResources?: LayeredSample['sources']['podResources'] };
}

const NO_COMPANION = sourceError('NOT_REQUESTED', 'no stats folder: enable the companion in the workload and set GPU_LAYERS_STATS_DIR (see `gpu-layers companion`)');
const NO_HOST = sourceError('NOT_REQUESTED', 'the host layer was not asked for');

function contextOf(uuid: string | null, sample: Sample, inputs: LayerInputs, errors: FieldErrors, key: string): number | null {
  const bytes = lookupContextBytes(inputs.calibration.entries, uuid, sample.driver.version, inputs.calibration.moduleLoading);
  if (bytes === null) {
    errors[key] =
      inputs.calibration.error ??
      sourceError('NOT_CALIBRATED', `no calibration for this GPU with driver ${sample.driver.version ?? 'n/a'} and CUDA_MODULE_LOADING=${inputs.calibration.moduleLoading}: run \`gpu-layers calibrate\``);
  }
  return bytes;
}

function allocatorOf(pid: number, uuid: string | null, inputs: LayerInputs, errors: FieldErrors): AllocatorLayer | null {
  if (inputs.companion === null) {
    errors['layers.allocator'] = NO_COMPANION;
    return null;
  }
  const result = inputs.companion.get(pid);
  if (result === undefined) {
    errors['layers.allocator'] = NO_COMPANION;
    return null;
  }
  if (!result.ok) {
    errors['layers.allocator'] = result.error;
    return null;
  }
  const layer = allocatorLayerOf(result, uuid);
  if ('code' in layer) {
    errors['layers.allocator'] = layer;
    return null;
  }
  return layer;
}

function layeredProcess(process: GpuProcess, uuid: string | null, contextBytes: number | null, contextError: FieldError | undefined, inputs: LayerInputs): LayeredProcess {
  const errors: FieldErrors = { ...process.errors };
  if (process.usedBytes === null) errors['layers.driverBytes'] = process.errors?.usedBytes ?? sourceError('VALUE_NOT_AVAILABLE', 'NVML does not report this process\'s memory');
  if (contextError !== undefined) errors['layers.contextBytes'] = contextError;
  const framework = inputs.framework.get(process.pid);
  if (framework === undefined || framework.layer === null) {
    errors['layers.framework'] = framework?.reason ?? sourceError('NOT_REQUESTED', 'no vLLM source given (--vllm URL, --vllm-log FILE)');
  } else {
    Object.assign(errors, framework.errors);
  }
  const layers = {
    driverBytes: process.usedBytes,
    contextBytes,
    allocator: allocatorOf(process.pid, uuid, inputs, errors),
    framework: framework?.layer ?? null,
  };
  let host: HostLayer | null = null;
  if (inputs.host === null) errors.host = NO_HOST;
  else {
    const reading = inputs.host.get(process.pid);
    host = reading === undefined ? null : withProcessAllocators(reading, inputs.companion?.get(process.pid) ?? null);
  }
  if (inputs.host !== null && host === null) errors.host = sourceError('PROCESS_NOT_VISIBLE', 'no host reading for this pid');
  const gaps = computeGaps(layers, errors);
  const kubernetes = inputs.kubernetes?.get(process.pid);
  if (kubernetes?.error) errors.kubernetes = kubernetes.error;
  // A fresh object rather than `delete`, which would leave it in V8's slow dictionary mode.
  const { errors: _driverErrors, ...driver } = process;
  const identity = kubernetes?.identity ?? null;
  return Object.keys(errors).length > 0 ? { ...driver, errors, layers, gaps, host, kubernetes: identity } : { ...driver, layers, gaps, host, kubernetes: identity };
}

function layeredProcesses(processes: GpuProcess[] | null, uuid: string | null, sample: Sample, inputs: LayerInputs, deviceErrors: FieldErrors, contextKey: string) {
  const contextErrors: FieldErrors = {};
  const contextBytes = contextOf(uuid, sample, inputs, contextErrors, 'contextBytes');
  if (contextErrors.contextBytes !== undefined) deviceErrors[contextKey] = contextErrors.contextBytes;
  return {
    contextBytes,
    processes: processes === null ? null : processes.map((p) => layeredProcess(p, uuid, contextBytes, contextErrors.contextBytes, inputs)),
  };
}

function layeredMig(mig: MigDevice, sample: Sample, inputs: LayerInputs): LayeredMigDevice {
  const errors = { ...mig.errors };
  const { processes } = layeredProcesses(mig.processes, mig.uuid, sample, inputs, errors, 'contextBytes');
  return { ...mig, processes, errors };
}

function unattributed(device: Device, errors: FieldErrors): number | null {
  const used = device.memory.usedBytes;
  const processes = device.processes;
  if (used === null || processes === null || processes.some((p) => p.usedBytes === null)) {
    errors.unattributedBytes = sourceError('INPUT_MISSING', 'needs the device used figure and every process\'s used figure');
    return null;
  }
  return used - processes.reduce((sum, p) => sum + (p.usedBytes ?? 0), 0);
}

function layeredDevice(device: Device, sample: Sample, inputs: LayerInputs): LayeredDevice {
  const errors = { ...device.errors };
  const { contextBytes, processes } = layeredProcesses(device.processes, device.uuid, sample, inputs, errors, 'contextBytes');
  return {
    ...device,
    processes,
    mig: device.mig === null ? null : { ...device.mig, devices: device.mig.devices.map((m) => layeredMig(m, sample, inputs)) },
    contextBytes,
    unattributedBytes: unattributed(device, errors),
    errors,
  };
}

export function joinLayers(sample: Sample, inputs: LayerInputs): LayeredSample {
  // Which processes left since the last sample is the monitor's to say (it has that sample).
  return { ...sample, devices: sample.devices.map((device) => layeredDevice(device, sample, inputs)), sources: { ...inputs.sources, podResources: inputs.sources.podResources ?? null }, exits: null };
}
