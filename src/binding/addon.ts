/**
 * Loads the compiled addon on first use (never at import, so `gpu-layers --help` and
 * `import 'gpu-layers'` work without it) and describes exactly what it exports. This module is
 * the only place that casts the addon's untyped exports; everything it returns is checked by
 * the schemas in raw-schema.ts before use.
 */
import { createRequire } from 'node:module';

import { GpuLayersError } from '../errors.js';
import { binaryFolders, locateAddon } from './binary-location.js';
import { explainLoadFailure, loadFailureFacts } from './load-failure.js';

export interface NativeOpenConfig {
  nvmlLibrary: string;
  /** Omitted: CUDA is not loaded. */
  cudaLibrary?: string;
}

export interface NativeProbeHandle {
  open(config: NativeOpenConfig): Promise<unknown>;
  sample(): Promise<unknown>;
  close(): Promise<void>;
  /**
   * The caller gave up on the calls in flight: until they return, neither they nor a call queued
   * behind them (a close()) keeps the process alive.
   */
  unref(): void;
}

export interface NativeAddon {
  NativeProbe: new () => NativeProbeHandle;
  /** Every logical call with the exported names tried, newest ABI first. */
  nvmlSymbols: Record<string, string[]>;
  cudaSymbols: Record<string, string[]>;
  /** Field names of the sample records (checked by sample-layout.ts). */
  sampleLayout: unknown;
}

function unavailable(file: string | null, error: unknown): GpuLayersError {
  const { cause, hints } = explainLoadFailure(loadFailureFacts(file, binaryFolders().map((f) => f.addon), error));
  const what = file === null ? 'the gpu-layers native addon could not be found' : `the gpu-layers native addon could not be loaded from ${file}`;
  return new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', `${what}: ${cause}`, { hints, ...(error !== null ? { cause: error } : {}) });
}

/**
 * Loads the addon at `addonPath` (default: the one the package has). Node caches what it loaded,
 * so a second call is a lookup. Throws NATIVE_ADDON_UNAVAILABLE with the cause and the fix.
 */
export function loadAddon(addonPath?: string): NativeAddon {
  const file = addonPath ?? locateAddon();
  if (file === null) throw unavailable(null, null);
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (error) {
    throw unavailable(file, error);
  }
  if (typeof addon.NativeProbe !== 'function') {
    throw new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', `${file} is not the gpu-layers addon (no NativeProbe export)`);
  }
  return addon;
}
