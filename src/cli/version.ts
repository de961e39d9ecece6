/** The package version, read from its package.json. */
import { readFileSync } from 'node:fs';
import path from 'node:path';

import { packageRoot } from '../package-root.js';

export function packageVersion(): string {
  const manifest = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}
