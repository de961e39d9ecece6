/**
 * Runs the load phase of a plan: `concurrency` workers take the planned requests in order, so the
 * canary's prompts run while fillers keep the server's batch full. Dispatch stops when the plan
 * is done, the duration is over (fillers still in flight are then aborted; probes in flight are
 * awaited, each within its own deadline) or the budget is spent. A failed filler is counted and
 * the load goes on; a failed probe stops everything (its error is the canary's).
 */
import type { Completion } from './completion.js';
import type { PlannedRequest } from './load-plan.js';
import type { CompletionRequest } from './openai-client.js';
import { BudgetExhausted, type RequestBudget } from './request-budget.js';

export interface LoadRunnerOptions {
  load: readonly PlannedRequest[];
  concurrency: number;
  durationMs: number;
  budget: RequestBudget;
  /** The request a probe of this prompt sends. */
  probeRequest(promptIndex: number): CompletionRequest;
  complete(request: CompletionRequest, signal: AbortSignal): Promise<Completion>;
  signal?: AbortSignal;
  onProbeDone?(done: number): void;
}

export interface ProbeResult {
  promptIndex: number;
  run: number;
  completion: Completion;
}

export interface LoadOutcome {
  probes: ProbeResult[];
  fillersRun: number;
  fillerFailures: number;
  firstFillerError: string | null;
  maxInFlight: number;
  stoppedBy: 'plan-complete' | 'duration' | 'budget';
  elapsedMs: number;
}

export async function runLoad(options: LoadRunnerOptions): Promise<LoadOutcome> {
  const started = Date.now();
  const deadline = started + options.durationMs;
  const stop = new AbortController(); // a probe failed, or the caller gave up: abort everything
  const fillerStop = new AbortController(); // the duration is over (or everything stops): abort fillers
  const onOuterAbort = (): void => stop.abort(options.signal?.reason);
  options.signal?.addEventListener('abort', onOuterAbort, { once: true });
  stop.signal.addEventListener('abort', () => fillerStop.abort(), { once: true });
  let durationOver = false;
  const timer = setTimeout(() => {
    durationOver = true;
    fillerStop.abort();
  }, options.durationMs);

  const probes: ProbeResult[] = [];
  let next = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  let fillersRun = 0;
  let fillerFailures = 0;
  let firstFillerError: string | null = null;
  let stoppedBy: LoadOutcome['stoppedBy'] = 'plan-complete';
  let failure: { error: unknown } | null = null;

  const worker = async (): Promise<void> => {
    for (;;) {
      if (failure !== null || stop.signal.aborted || next >= options.load.length) return;
      if (durationOver || Date.now() >= deadline) {
        stoppedBy = 'duration';
        return;
      }
      if (options.budget.left <= 0) {
        stoppedBy = 'budget';
        return;
      }
      const item = options.load[next++]!;
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      try {
        if (item.kind === 'probe') {
          const completion = await options.complete(options.probeRequest(item.promptIndex), stop.signal);
          probes.push({ promptIndex: item.promptIndex, run: item.run, completion });
          options.onProbeDone?.(probes.length);
        } else {
          await options.complete({ prompt: item.prompt, maxTokens: item.maxTokens }, fillerStop.signal);
          fillersRun++;
        }
      } catch (error) {
        if (error instanceof BudgetExhausted) {
          stoppedBy = 'budget';
          return;
        }
        if (failure !== null || stop.signal.aborted) return;
        if (item.kind === 'probe') {
          failure = { error };
          stop.abort();
          return;
        }
        if (durationOver) continue; // cut off by the duration, not a failure
        fillerFailures++;
        firstFillerError ??= error instanceof Error ? error.message : String(error);
      } finally {
        inFlight--;
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    clearTimeout(timer);
    options.signal?.removeEventListener('abort', onOuterAbort);
  }
  if (options.signal?.aborted === true) throw options.signal.reason;
  if (failure !== null) throw (failure as { error: unknown }).error;
  return { probes, fillersRun, fillerFailures, firstFillerError, maxInFlight, stoppedBy, elapsedMs: Date.now() - started };
}
