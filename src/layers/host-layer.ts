/**
 * The host layer of a GPU process, made from what /proc said of it (sources/process-host.ts):
 * the same figures and reasons, without the uids, which only the companion check reads.
 */
import type { ProcessHostReading } from '../sources/process-host.js';
import type { HostLayer } from './schema.js';

export function hostLayerOf(reading: ProcessHostReading): HostLayer {
  const { writerUids: _writerUids, ...layer } = reading;
  return layer;
}
