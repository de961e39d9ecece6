/**
 * Long work on the JS thread cut into slices: between slices the event loop runs (timers, the
 * exporter's scrapes, other sources), and a deadline that passed ends the work. An awaited
 * promise that is already settled resumes before any timer, so a loop over buffered stream
 * chunks never lets the loop turn by itself: this yields with setImmediate, which does.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';

export class DeadlinePassedError extends Error {
  constructor() {
    super('the deadline passed');
    this.name = 'DeadlinePassedError';
  }
}

/** Most milliseconds of work between two turns of the event loop. */
export const SLICE_MS = 10;

/**
 * A checkpoint to call often inside long work: it yields once SLICE_MS of work went by since
 * the last turn, and throws DeadlinePassedError once `signal` has aborted.
 */
export function sliceCheckpoint(signal: AbortSignal, now: () => number = performance.now.bind(performance)): () => Promise<void> {
  let sliceStart = now();
  return async () => {
    if (signal.aborted) throw new DeadlinePassedError();
    if (now() - sliceStart < SLICE_MS) return;
    await nextTurn();
    sliceStart = now();
    if (signal.aborted) throw new DeadlinePassedError();
  };
}
