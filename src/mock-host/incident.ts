/**
 * An incident scenario: a mock host whose state is scripted step by step (the driver's figures,
 * the allocator's, the host memory split, what each vLLM server's /metrics says), to be played
 * through the real pipeline and recorded. `expect` is what `diagnose` must name, exactly.
 */
import type { DemoProcess } from './demo-host.js';
import type { FindingId } from '../diagnosis/finding-schema.js';

export interface IncidentServer {
  /** The pid that listens on the server's port (an ancestor of its GPU workers). */
  listenerPid: number;
  model: string;
  running: number;
  waiting: number;
  kvCacheUsage: number;
  numGpuBlocks: number;
}

export interface IncidentState {
  processes: DemoProcess[];
  servers: IncidentServer[];
}

export interface Incident {
  name: string;
  /** What it reproduces, in a sentence. */
  story: string;
  expect: FindingId[];
  gpus: number;
  /** Simulated: the recording spans steps x intervalMs from startMs, played in a moment. */
  startMs: number;
  intervalMs: number;
  steps: number;
  state(step: number): IncidentState;
}

/** A deterministic jitter source (mulberry32), so every recording of an incident is the same. */
export function seededNoise(seed: number): (amplitude: number) => number {
  let a = seed >>> 0;
  return (amplitude) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const unit = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.round((unit * 2 - 1) * amplitude);
  };
}
