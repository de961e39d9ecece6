/**
 * The installed package's root folder, found by walking up from this module to the package.json
 * named gpu-layers: the same code runs from src/ (tests), dist/ (built) and a bundled CLI.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      const manifest = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: unknown };
      if (manifest.name === 'gpu-layers') return dir;
    } catch {
      // no package.json here: keep walking up
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error('gpu-layers: cannot find the package root above ' + fileURLToPath(import.meta.url));
    dir = parent;
  }
}
