/**
 * An AbortSignal for verbs that run until stopped (`watch`, `record`): aborted by Ctrl-C
 * (SIGINT), SIGTERM or a time limit, so they finish their file and their last line cleanly.
 */
export interface StopSignal {
  signal: AbortSignal;
  /** Why it stopped: 'interrupted', 'duration' or 'count'. */
  reason(): string | null;
  stop(reason: string): void;
  dispose(): void;
}

export function stopSignal(durationMs: number | null): StopSignal {
  const controller = new AbortController();
  let reason: string | null = null;
  const stop = (why: string): void => {
    if (reason !== null) return;
    reason = why;
    controller.abort();
  };
  const interrupted = (): void => stop('interrupted');
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const timer = durationMs === null ? null : setTimeout(() => stop('duration'), durationMs);
  return {
    signal: controller.signal,
    reason: () => reason,
    stop,
    dispose: () => {
      process.removeListener('SIGINT', interrupted);
      process.removeListener('SIGTERM', interrupted);
      if (timer !== null) clearTimeout(timer);
    },
  };
}
