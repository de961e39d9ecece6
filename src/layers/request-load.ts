/**
 * The request load of one vLLM engine at a sample: token and request rates, and the request phase
 * (shared/reference/when-heaps-lie.txt, "Phase 2: Profile by Request Phase": memory problems track
 * prefill, decode and idle, and "extended idle periods followed by a burst of concurrent
 * prefills"). Pure: the caller keeps each engine's LoadState between samples.
 *
 * From /metrics (nextRequestLoad), over the counters of two samples:
 * - Rates are the counters' increases over the time since the previous sample. A counter that
 *   went down restarted (vLLM restarted): its increase is its current value, as Prometheus's
 *   rate() takes it (counterIncrease). A counter not exposed, in either sample, gives no rate.
 * - The first sample has no rates (null); its phase is 'idle' when nothing is running or waiting,
 *   else null. Time going backwards or not moving (a zero interval) is treated as a first sample:
 *   no rates, and the state starts again from this sample.
 * - Phase of an interval: 'idle' when no prompt or generation token was processed in it and
 *   nothing is running or waiting; 'prefill-heavy' when its prompt tokens exceed its generated
 *   tokens; 'decode' otherwise (tokens generated, or requests running or waiting with no token
 *   processed). Null when the token counters are not both known (then 'idle' only as for a first
 *   sample), or no token moved and running and waiting are not known.
 * - A prefill burst is a run of consecutive intervals in which the prompt-token counter increased;
 *   its size is the prompt tokens over the run. sinceLastPrefillSeconds is the time since the end
 *   of the last interval with a prompt-token increase (0 in such an interval; null until one is
 *   seen). idleBeforeLastBurstSeconds is how long the intervals just before the burst's first one
 *   had no prompt or generation token (0 when the one before was busy; null when no interval was
 *   measured before it: the idle time before the first sample is not known).
 *
 * From the log (requestLoadFromLog), over the engine's latest stats line: the line's throughputs
 * (averaged over vLLM's logging interval before the line), the same phase rules over them and the
 * line's running and waiting, no request rate (the line has none), and the time since the line
 * that ended the last prefill burst: now - lastPrefillAt.
 */
import type { VllmLogStats } from '../sources/vllm-log.js';
import type { VllmCounters } from '../sources/vllm-metrics.js';
import type { RequestLoad, RequestPhase } from './schema.js';

/** What one engine carries from sample to sample (plain data: it survives JSON). */
export interface LoadState {
  /** When the counters below were read (ms since the epoch). */
  atMs: number;
  promptTokens: number | null;
  generationTokens: number | null;
  requestsFinished: number | null;
  /** End of the last interval with a prompt-token increase (ms); null until one. */
  lastPrefillAtMs: number | null;
  /** The last interval had a prompt-token increase: a burst is running. */
  inBurst: boolean;
  /** Prompt tokens of the current or last burst. */
  burstTokens: number | null;
  idleBeforeBurstSeconds: number | null;
  /** Seconds of consecutive idle intervals up to the last sample (0 after a busy one); null before any interval, or after one whose tokens are not known. */
  idleRunSeconds: number | null;
}

/** A counter value worth reading: finite and at least 0. */
function count(value: number | null): number | null {
  return value !== null && Number.isFinite(value) && value >= 0 ? value : null;
}

/**
 * How much a counter grew between two readings. One that went down restarted (vLLM restarted):
 * the increase is the current value, as Prometheus's rate() takes it. Null when either is unknown.
 */
export function counterIncrease(previous: number | null, current: number | null): number | null {
  const before = count(previous);
  const now = count(current);
  if (before === null || now === null) return null;
  return now >= before ? now - before : now;
}

function phaseOf(prompt: number, generation: number, running: number | null, waiting: number | null): RequestPhase | null {
  if (prompt > 0 || generation > 0) return prompt > generation ? 'prefill-heavy' : 'decode';
  if (running === 0 && waiting === 0) return 'idle';
  if ((running ?? 0) > 0 || (waiting ?? 0) > 0) return 'decode';
  return null;
}

/** The phase with no interval to go by: idle when nothing is running or waiting. */
function phaseWithoutTokens(running: number | null, waiting: number | null): RequestPhase | null {
  return running === 0 && waiting === 0 ? 'idle' : null;
}

function firstSample(counters: VllmCounters, running: number | null, waiting: number | null, atMs: number): { load: RequestLoad; state: LoadState } {
  return {
    load: {
      source: 'metrics',
      promptTokensPerSecond: null,
      generationTokensPerSecond: null,
      requestsFinishedPerSecond: null,
      phase: phaseWithoutTokens(running, waiting),
      sinceLastPrefillSeconds: null,
      lastPrefillBurstTokens: null,
      idleBeforeLastBurstSeconds: null,
    },
    state: {
      atMs,
      promptTokens: count(counters.promptTokens),
      generationTokens: count(counters.generationTokens),
      requestsFinished: count(counters.requestsFinished),
      lastPrefillAtMs: null,
      inBurst: false,
      burstTokens: null,
      idleBeforeBurstSeconds: null,
      idleRunSeconds: null,
    },
  };
}

/** This sample's load from the engine's counters, and the state the next sample goes on from. */
export function nextRequestLoad(
  previous: LoadState | null,
  counters: VllmCounters,
  running: number | null,
  waiting: number | null,
  atMs: number,
): { load: RequestLoad; state: LoadState } {
  if (previous === null || !Number.isFinite(atMs) || !Number.isFinite(previous.atMs) || atMs <= previous.atMs) return firstSample(counters, running, waiting, atMs);
  const seconds = (atMs - previous.atMs) / 1000;
  const prompt = counterIncrease(previous.promptTokens, counters.promptTokens);
  const generation = counterIncrease(previous.generationTokens, counters.generationTokens);
  const finished = counterIncrease(previous.requestsFinished, counters.requestsFinished);
  const rate = (increase: number | null) => (increase === null ? null : increase / seconds);

  let { lastPrefillAtMs, inBurst, burstTokens, idleBeforeBurstSeconds } = previous;
  if (prompt !== null && prompt > 0) {
    if (!inBurst) {
      burstTokens = 0;
      idleBeforeBurstSeconds = previous.idleRunSeconds;
    }
    burstTokens = (burstTokens ?? 0) + prompt;
    lastPrefillAtMs = atMs;
    inBurst = true;
  } else {
    inBurst = false;
  }
  const known = prompt !== null && generation !== null;
  const idle = known && prompt === 0 && generation === 0;
  const idleRunSeconds = !known ? null : idle ? (previous.idleRunSeconds ?? 0) + seconds : 0;
  return {
    load: {
      source: 'metrics',
      promptTokensPerSecond: rate(prompt),
      generationTokensPerSecond: rate(generation),
      requestsFinishedPerSecond: rate(finished),
      phase: known ? phaseOf(prompt, generation, running, waiting) : (prompt ?? 0) > 0 || (generation ?? 0) > 0 ? null : phaseWithoutTokens(running, waiting),
      sinceLastPrefillSeconds: lastPrefillAtMs === null ? null : (atMs - lastPrefillAtMs) / 1000,
      lastPrefillBurstTokens: burstTokens,
      idleBeforeLastBurstSeconds: idleBeforeBurstSeconds,
    },
    state: {
      atMs,
      promptTokens: count(counters.promptTokens),
      generationTokens: count(counters.generationTokens),
      requestsFinished: count(counters.requestsFinished),
      lastPrefillAtMs,
      inBurst,
      burstTokens,
      idleBeforeBurstSeconds,
      idleRunSeconds,
    },
  };
}

/** The load from the engine's latest periodic stats line of the log, at `atMs`. */
export function requestLoadFromLog(stats: VllmLogStats, atMs: number): RequestLoad {
  return {
    source: 'log',
    promptTokensPerSecond: stats.promptTokensPerSecond,
    generationTokensPerSecond: stats.generationTokensPerSecond,
    requestsFinishedPerSecond: null,
    phase: phaseOf(stats.promptTokensPerSecond, stats.generationTokensPerSecond, stats.running, stats.waiting),
    sinceLastPrefillSeconds: stats.lastPrefillAt === null || !Number.isFinite(atMs) ? null : Math.max(0, atMs - stats.lastPrefillAt) / 1000,
    lastPrefillBurstTokens: stats.lastPrefillBurstTokens,
    idleBeforeLastBurstSeconds: stats.idleBeforeLastBurstSeconds,
  };
}
