/**
 * Loads the compiled addon on first use (never at import, so `gpu-layers --help` and
 * `import 'gpu-layers'` work without it) and describes exactly what it exports. This module is
 * the only place that casts the addon's untyped exports; everything it returns is checked by
 * the schemas in raw-schema.ts before use.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { GpuLayersError } from '../errors.js';
import { packageRoot } from '../package-root.js';

export interface NativeOpenConfig {
  nvmlLibrary: string;
  /** Omitted: CUDA is not loaded. */
  cudaLibrary?: string;
}

export interface NativeProbeHandle {
  open(config: NativeOpenConfig): Promise<unknown>;
  sample(): Promise<unknown>;
  close(): Promise<void>;
  /** Stop a stuck native call from keeping the process alive. */
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

const loaded = new Map<string, NativeAddon>();

/**
 * The source build when there is one (a checkout, `npm rebuild gpu-layers --build-from-source`, a
 * platform without prebuilds), else the prebuild the package ships (scripts/prebuilds.js). With
 * neither, the source build's path, which the load error then names.
 */
export function defaultAddonPath(): string {
  const built = path.join(packageRoot(), 'build', 'Release', 'gpu_layers.node');
  if (existsSync(built)) return built;
  const prebuilt = path.join(packageRoot(), 'prebuilds', `${process.platform}-${process.arch}`, 'gpu-layers.napi.glibc.node');
  return existsSync(prebuilt) ? prebuilt : built;
}

export function loadAddon(addonPath: string = defaultAddonPath()): NativeAddon {
  const cached = loaded.get(addonPath);
  if (cached !== undefined) return cached;
  let addon: NativeAddon;
  try {
    addon = createRequire(import.meta.url)(addonPath) as NativeAddon;
  } catch (error) {
    throw new GpuLayersError(
      'NATIVE_ADDON_UNAVAILABLE',
      `the gpu-layers native addon could not be loaded from ${addonPath}: ${(error as Error).message}`,
      {
        hints: [
          'rebuild it with `npm rebuild gpu-layers` (needs python3, make and a C++17 compiler)',
          'if npm skipped its install script (allowScripts), approve it first: `npm install-scripts approve gpu-layers`',
        ],
        cause: error,
      },
    );
  }
  if (typeof addon.NativeProbe !== 'function') {
    throw new GpuLayersError('NATIVE_ADDON_UNAVAILABLE', `${addonPath} is not the gpu-layers addon (no NativeProbe export)`);
  }
  loaded.set(addonPath, addon);
  return addon;
}
