/**
 * Where the Python companion ships inside the package: its folder (python/gpu_layers_companion,
 * for PYTHONPATH) and its wheel (dist/python/, built by python/companion_wheel.py during the
 * build that `npm pack` runs, for `pip install` into images without Node).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { packageRoot } from './package-root.js';

export function companionDirectory(): string {
  return path.join(packageRoot(), 'python', 'gpu_layers_companion');
}

/** npm's semver as PEP 440 writes it (python/companion_wheel.py's pep440_version): 1.2.3-beta.4 is 1.2.3b4. */
export function companionWheelVersion(npmVersion: string): string {
  const match = /^(\d+)\.(\d+)\.(\d+)(?:-(alpha|beta|rc)\.?(\d+))?$/.exec(npmVersion);
  if (match === null) throw new Error(`gpu-layers: package version ${npmVersion} has no PEP 440 form`);
  const pre = match[4] === undefined ? '' : `${{ alpha: 'a', beta: 'b', rc: 'rc' }[match[4] as 'alpha' | 'beta' | 'rc']}${match[5]}`;
  return `${match[1]}.${match[2]}.${match[3]}${pre}`;
}

/** The path of the companion's wheel in this package (it exists once the package is built). */
export function companionWheel(): string {
  const root = packageRoot();
  const manifest = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
  return path.join(root, 'dist', 'python', `gpu_layers_companion-${companionWheelVersion(manifest.version)}-py3-none-any.whl`);
}
