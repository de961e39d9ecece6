/**
 * Which layers a window measured, per process: a diagnosis that names nothing must not say a
 * layer did not grow when it was never read. A layer counts as measured for a process when it
 * is known in at least half of its readings (THRESHOLDS.knownShare).
 */
import type { ProcessHistory } from './process-history.js';
import { THRESHOLDS } from './thresholds.js';

export type Layer = 'allocator' | 'framework' | 'host';

export interface Unmeasured {
  layer: Layer;
  /** The processes it was not measured for. */
  pids: number[];
}

export function unmeasuredLayers(histories: readonly ProcessHistory[]): Unmeasured[] {
  const missing = new Map<Layer, Set<number>>([
    ['allocator', new Set()],
    ['framework', new Set()],
    ['host', new Set()],
  ]);
  for (const history of histories) {
    const known = (has: (p: (typeof history.points)[number]) => boolean) => history.points.filter(has).length >= THRESHOLDS.knownShare * history.points.length;
    if (!known((p) => p.process.layers.allocator !== null)) missing.get('allocator')!.add(history.pid);
    if (!known((p) => p.process.layers.framework !== null)) missing.get('framework')!.add(history.pid);
    if (!known((p) => p.process.host?.rssBytes != null)) missing.get('host')!.add(history.pid);
  }
  return [...missing].filter(([, pids]) => pids.size > 0).map(([layer, pids]) => ({ layer, pids: [...pids].sort((a, b) => a - b) }));
}
