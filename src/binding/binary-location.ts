/**
 * The one rule for finding gpu-layers' own binaries at run time: the addon and the two mock
 * libraries. A source build (build/Release: a checkout, `npm rebuild gpu-layers
 * --build-from-source`, a platform without prebuilds) comes first, then the prebuilds the package
 * ships (prebuilds/<platform>-<arch>/, see scripts/build/prebuilds.js). Our own rule rather than
 * node-gyp-build's at run time: the mock libraries live in the same folders under fixed names
 * (clients load them by name), which node-gyp-build does not look for, and a miss must say why
 * (load-failure.ts), not only that nothing matched.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';

import { packageRoot } from '../package-root.js';

/** The prebuilt addon's name: prebuildify's tags, read by node-gyp-build at install time. */
export const PREBUILT_ADDON = 'gpu-layers.napi.glibc.node';
const SOURCE_ADDON = 'gpu_layers.node';

export interface BinaryFolder {
  kind: 'source build' | 'prebuild';
  /** Where the addon is in it. */
  addon: string;
  /** The folder of the mock libraries in it. */
  mock: string;
}

/** The folders in the order they are tried, whether or not they exist. */
export function binaryFolders(root: string = packageRoot()): BinaryFolder[] {
  const release = path.join(root, 'build', 'Release');
  const prebuilds = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
  return [
    { kind: 'source build', addon: path.join(release, SOURCE_ADDON), mock: path.join(release, 'mock') },
    { kind: 'prebuild', addon: path.join(prebuilds, PREBUILT_ADDON), mock: path.join(prebuilds, 'mock') },
  ];
}

/** The first addon that exists, or null when there is none at all. */
export function locateAddon(root?: string): string | null {
  return binaryFolders(root).find((folder) => existsSync(folder.addon))?.addon ?? null;
}

/** The first folder with both mock libraries, or null. */
export function locateMockLibraries(root?: string): string | null {
  const folder = binaryFolders(root).find((f) => existsSync(path.join(f.mock, 'libnvidia-ml.so.1')) && existsSync(path.join(f.mock, 'libcuda.so.1')));
  return folder?.mock ?? null;
}
