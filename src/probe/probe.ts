/**
 * openProbe() and the Probe it returns: the driver layer, and nothing above it. A probe
 * loads NVML (and CUDA, context-free) once, on its own native worker thread, and takes samples
 * there; every call has a deadline, at most one native call is in flight, and a call that never
 * returns (a wedged GPU) makes sample() reject at the deadline instead of hanging the caller.
 */
import type * as z from 'zod/mini';

import { GpuLayersError } from '../errors.js';
import { loadAddon, type NativeProbeHandle } from '../binding/addon.js';
import { decodeSample } from '../binding/decode-sample.js';
import { rawOpenSchema, sampleTransferSchema } from '../binding/raw-schema.js';
import { readSampleLayout, type SampleLayout } from '../binding/sample-layout.js';
import { sampleBuilder, type SampleContext } from '../sample/build-sample.js';
import type { Sample } from '../sample/schema.js';
import type { RawSample } from '../binding/sample-reading-schema.js';
import { validate } from '../validation.js';
import { withDeadline } from './deadline.js';
import { interpretOpen, type ProbeInfo } from './open-result.js';
import { resolveProbeOptions, type ProbeOptions, type ResolvedProbeOptions } from './options.js';
import { attachProcessCommands } from './process-commands.js';

/** A native call that outlived its deadline and has not returned yet. */
interface StuckCall {
  what: string;
  since: number;
}

function nativeError(error: unknown, what: string): GpuLayersError {
  if (error instanceof GpuLayersError) return error;
  const code = (error as { code?: unknown }).code;
  const message = (error as Error).message ?? String(error);
  if (code === 'PROBE_CLOSED') return new GpuLayersError('PROBE_CLOSED', 'the probe is closed');
  return new GpuLayersError('NATIVE_FAILURE', `native ${what} failed: ${message}`, { cause: error });
}

function parseNative<T>(schema: z.ZodMiniType<T>, value: unknown, what: string): T {
  const parsed = validate(schema, value);
  if (!parsed.ok) {
    throw new GpuLayersError('NATIVE_OUTPUT_INVALID', `the addon's ${what} reading does not match its schema: ${parsed.message}`, {
      hints: ['the addon and the JavaScript are from different builds: rebuild with `npm rebuild gpu-layers`'],
    });
  }
  return parsed.data;
}

export class Probe {
  /** What was loaded and how the CUDA driver sees the devices; fixed for the probe's life. */
  readonly info: ProbeInfo;
  readonly #native: NativeProbeHandle;
  readonly #build: (raw: RawSample) => Sample;
  readonly #layout: SampleLayout;
  readonly #options: ResolvedProbeOptions;
  #inFlight: Promise<Sample> | null = null;
  #stuck: StuckCall | null = null;
  #closed = false;

  /** @internal Use openProbe(). */
  constructor(native: NativeProbeHandle, info: ProbeInfo, context: SampleContext, layout: SampleLayout, options: ResolvedProbeOptions) {
    this.#native = native;
    this.info = info;
    this.#build = sampleBuilder(context);
    this.#layout = layout;
    this.#options = options;
  }

  /**
   * One reading of every device and process. Concurrent callers share the call in flight. Rejects
   * with NVML_TIMEOUT at the deadline, and at once while an earlier call is still stuck.
   */
  sample(): Promise<Sample> {
    if (this.#closed) return Promise.reject(new GpuLayersError('PROBE_CLOSED', 'the probe is closed'));
    if (this.#stuck !== null) return Promise.reject(this.#stuckError(this.#stuck));
    if (this.#inFlight !== null) return this.#inFlight;
    const sampling = this.#call(() => this.#native.sample(), 'sample').then(async (raw) => {
      const reading = decodeSample(parseNative(sampleTransferSchema, raw, 'sample'), this.#layout);
      const sample = this.#build(reading);
      if (this.#options.processCommands) await attachProcessCommands(sample);
      return sample;
    });
    this.#inFlight = sampling;
    const clear = (): void => {
      this.#inFlight = null;
    };
    sampling.then(clear, clear);
    return sampling;
  }

  /**
   * Shuts NVML down for this probe. Resolves at once while an earlier call is stuck (the shutdown
   * then runs when that call returns), and at the deadline if the shutdown itself is stuck; in
   * neither case does the shutdown keep the process alive.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await shutDown(this.#native, this.#stuck !== null, this.#options.timeoutMs);
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Runs one native call under the deadline; a timeout marks the probe stuck until it returns. */
  #call(start: () => Promise<unknown>, what: string): Promise<unknown> {
    return callWithDeadline(this.#native, start, what, this.#options.timeoutMs, (stuck) => {
      this.#stuck = stuck;
    });
  }

  #stuckError(stuck: StuckCall): GpuLayersError {
    const seconds = ((Date.now() - stuck.since) / 1000).toFixed(1);
    return new GpuLayersError(
      'NVML_TIMEOUT',
      `an earlier ${stuck.what} has been waiting on the driver for ${seconds} s; not starting another native call`,
      { hints: timeoutHints },
    );
  }
}

const timeoutHints = [
  'the GPU or driver may be wedged: check `dmesg` for Xid errors and whether nvidia-smi responds',
  'with persistence mode off, the first query of each GPU can take seconds: raise timeoutMs (--timeout) or enable persistence (nvidia-smi -pm 1)',
];

function callWithDeadline(
  native: NativeProbeHandle,
  start: () => Promise<unknown>,
  what: string,
  timeoutMs: number,
  setStuck: (stuck: StuckCall | null) => void,
): Promise<unknown> {
  const call = start();
  const since = Date.now();
  let timedOut = false;
  const settled = (): void => {
    if (timedOut) setStuck(null);
  };
  call.then(settled, settled);
  return withDeadline(call, timeoutMs, () => {
    timedOut = true;
    setStuck({ what, since });
    native.unref();
    return new GpuLayersError('NVML_TIMEOUT', `${what} did not return within ${timeoutMs} ms`, { hints: timeoutHints });
  }).catch((error: unknown) => {
    throw nativeError(error, what);
  });
}

/**
 * Queues NVML's shutdown on the probe's worker and waits for it at most `timeoutMs`; past that,
 * the shutdown goes on without keeping the process alive. Behind a stuck call it does not wait at
 * all: on the probe's one worker thread the shutdown cannot start before that call returns, so
 * waiting would be waiting on the driver (and the addon keeps an abandoned probe unref'd).
 */
async function shutDown(native: NativeProbeHandle, stuck: boolean, timeoutMs: number): Promise<void> {
  const closing = native.close();
  if (stuck) {
    void closing.catch(() => {});
    return;
  }
  try {
    await withDeadline(closing, timeoutMs, () => new GpuLayersError('NVML_TIMEOUT', `close: NVML shutdown did not return within ${timeoutMs} ms`));
  } catch {
    native.unref();
  }
}

/**
 * Loads NVML (and the CUDA driver, context-free) and initialises it once. Throws a
 * GpuLayersError whose code says why when NVML cannot be used: NVML_LIBRARY_NOT_FOUND,
 * NVML_DRIVER_NOT_LOADED, NVML_NO_PERMISSION, NVML_LIB_RM_VERSION_MISMATCH, NVML_TIMEOUT, ...
 */
export async function openProbe(options?: ProbeOptions): Promise<Probe> {
  const resolved = resolveProbeOptions(options);
  const addon = loadAddon(resolved.addonPath);
  const layout = readSampleLayout(addon.sampleLayout);
  const native = new addon.NativeProbe();
  const config = resolved.cudaLibrary === null ? { nvmlLibrary: resolved.nvmlLibrary } : { nvmlLibrary: resolved.nvmlLibrary, cudaLibrary: resolved.cudaLibrary };
  let outcome;
  let stuck = false;
  try {
    const raw = await callWithDeadline(native, () => native.open(config), 'open', resolved.timeoutMs, (call) => {
      stuck = call !== null;
    });
    outcome = interpretOpen(parseNative(rawOpenSchema, raw, 'open'), addon.nvmlSymbols);
  } catch (error) {
    await shutDown(native, stuck, resolved.timeoutMs);
    throw error;
  }
  if (outcome.failure !== null) {
    await shutDown(native, false, resolved.timeoutMs);
    throw outcome.failure;
  }
  return new Probe(native, outcome.info, outcome.context, layout, resolved);
}
