/**
 * An incident scenario: a mock host whose state is scripted step by step (the driver's figures,
 * the allocator's, the host memory split, what each vLLM server's /metrics says), to be played
 * through the real pipeline and recorded. `expect` is what `diagnose` must name, exactly.
 */
import type { FindingId } from '../diagnosis/finding-schema.js';
import type { FakeProcess } from './fake-host.js';
import type { FakeVllmServer } from './fake-vllm-server.js';
import { seededRandom } from './seeded-random.js';

export interface IncidentState {
  processes: FakeProcess[];
  servers: FakeVllmServer[];
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

/** A deterministic jitter source, so every recording of an incident is the same. */
export function seededNoise(seed: number): (amplitude: number) => number {
  const random = seededRandom(seed);
  return (amplitude) => Math.round((random.next() * 2 - 1) * amplitude);
}
