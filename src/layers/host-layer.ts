/**
 * The host layer of a GPU process, made from what /proc said of it (sources/process-host.ts):
 * the same figures and reasons, without the uids, which only the companion check reads.
 */
import { readProcessHost, type ProcessHostReading } from '../sources/process-host.js';
import type { HostLayer } from './schema.js';

export function hostLayerOf(reading: ProcessHostReading): HostLayer {
  const { writerUids: _writerUids, ...layer } = reading;
  return layer;
}

/** One process's host layer straight from /proc (`readLayers` reads every process at once). */
export async function readHostLayer(pid: number, procRoot = '/proc'): Promise<HostLayer> {
  return hostLayerOf(await readProcessHost(pid, procRoot));
}
