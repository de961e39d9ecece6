/** Where the Python companion ships inside the package (python/gpu_layers_companion). */
import path from 'node:path';

import { packageRoot } from './package-root.js';

export function companionDirectory(): string {
  return path.join(packageRoot(), 'python', 'gpu_layers_companion');
}
