/** A layered device's processes and those of its MIG instances, each pid once (in MIG mode NVML lists them under both). */
import type { LayeredDevice, LayeredProcess } from './schema.js';

export function processesOf(device: LayeredDevice): LayeredProcess[] {
  const seen = new Set<number>();
  const all: LayeredProcess[] = [];
  for (const p of [...(device.processes ?? []), ...(device.mig?.devices ?? []).flatMap((m) => m.processes ?? [])]) {
    if (seen.has(p.pid)) continue;
    seen.add(p.pid);
    all.push(p);
  }
  return all;
}
