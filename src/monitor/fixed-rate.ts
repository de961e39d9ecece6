/**
 * The monitor's clock: ticks at a fixed rate from the first one. A slow sample does not push
 * every later one back, and a missed tick is skipped rather than run in a burst. Ends when the
 * signal aborts, also in the middle of a wait.
 */

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** Yields tick numbers (0, 1, 3, ... when 2 was missed) at start + tick x intervalMs. */
export async function* fixedRateTicks(intervalMs: number, signal?: AbortSignal): AsyncGenerator<number, void, undefined> {
  const start = Date.now();
  for (let tick = 0; signal?.aborted !== true; ) {
    yield tick;
    tick = Math.max(tick + 1, Math.ceil((Date.now() - start) / intervalMs));
    await pause(start + tick * intervalMs - Date.now(), signal);
  }
}
