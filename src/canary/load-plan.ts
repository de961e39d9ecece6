/**
 * What the canary sends, in order, before anything is sent: the fixed prompts alone (the
 * reference), then the load, where each fixed prompt runs again (a probe) among filler requests
 * of varied prompt and output lengths, so the scheduler has to batch, reorder, chunk long
 * prefills and, when memory runs short, preempt. The first concurrency - 1 fillers fill the batch
 * before the first probe; the rest are spread evenly between probes; each round runs every
 * prompt once before the next round starts, so a load phase cut short by its duration still
 * covers the prompts evenly. The plan fits the request budget, with room for the first request to
 * find the API: it is the most the canary will send, never a target.
 */
import { GpuLayersError } from '../errors.js';
import { seededUniform } from '../seeded-uniform.js';

/** Requests the first request may add while it finds the API and whether logprobs are offered (see OpenAiClient). */
export const NEGOTIATION_RESERVE = 2;

export interface LoadPlanOptions {
  /** Requests in flight at once under load, probes included. */
  concurrency: number;
  /** How many times each fixed prompt runs under load. */
  runsPerPrompt: number;
  /** Filler prompts' length in words, [min, max]. */
  fillerPromptWords: readonly [number, number];
  /** Filler requests' max_tokens, [min, max]. */
  fillerMaxTokens: readonly [number, number];
  /** The most requests sent in all (references, negotiation and load). */
  requestBudget: number;
}

export type PlannedRequest =
  | { kind: 'probe'; promptIndex: number; run: number }
  | { kind: 'filler'; index: number; prompt: string; maxTokens: number };

export interface LoadPlan {
  /** The reference runs: each prompt alone, one after the other. */
  references: number;
  /** The load phase, in the order requests are started. */
  load: PlannedRequest[];
  probes: number;
  fillers: number;
}

const WORDS = (
  'the a server memory request token batch model queue river mountain city garden winter summer light ' +
  'engine kernel number letter window market bread coffee music paper story answer question morning evening ' +
  'north south small large quick slow bright quiet ancient modern simple careful open closed green blue red ' +
  'walks reads writes builds sends holds finds keeps turns moves grows falls rises waits runs'
).split(' ');

function between(random: () => number, [min, max]: readonly [number, number]): number {
  return min + Math.floor(random() * (max - min + 1));
}

/** The filler request number `index`: deterministic text of a varied length, a varied max_tokens. */
export function fillerRequest(index: number, options: Pick<LoadPlanOptions, 'fillerPromptWords' | 'fillerMaxTokens'>): PlannedRequest & { kind: 'filler' } {
  const random = seededUniform(0x9e3779b9 ^ (index * 2654435761));
  const words = between(random, options.fillerPromptWords);
  const text: string[] = [];
  for (let i = 0; i < words; i++) text.push(WORDS[Math.floor(random() * WORDS.length)]!);
  return { kind: 'filler', index, prompt: `Continue this text: ${text.join(' ')}`, maxTokens: between(random, options.fillerMaxTokens) };
}

/** The fewest requests a plan for these options needs: references, negotiation, probes and one batch of company. */
export function minimumBudget(promptCount: number, options: Pick<LoadPlanOptions, 'concurrency' | 'runsPerPrompt'>): number {
  return promptCount + NEGOTIATION_RESERVE + promptCount * options.runsPerPrompt + (options.concurrency - 1);
}

export function planLoad(promptCount: number, options: LoadPlanOptions): LoadPlan {
  const minimum = minimumBudget(promptCount, options);
  if (options.requestBudget < minimum) {
    throw new GpuLayersError(
      'INVALID_OPTIONS',
      `a budget of ${options.requestBudget} requests is too small: ${promptCount} prompts alone, ${NEGOTIATION_RESERVE} for finding the API, ` +
        `${promptCount * options.runsPerPrompt} runs under load and ${options.concurrency - 1} other requests around them need ${minimum}; ` +
        'raise --budget, or lower --prompts, --runs or --concurrency',
    );
  }
  const probes = promptCount * options.runsPerPrompt;
  const room = options.requestBudget - promptCount - NEGOTIATION_RESERVE - probes;
  const warmup = options.concurrency - 1;
  // Enough fillers for every probe to have concurrency - 1 others beside it; fewer when the budget says so.
  const fillers = Math.min(room, warmup * (probes + 1));
  const spread = fillers - warmup;
  const load: PlannedRequest[] = [];
  let next = 0;
  const filler = (): void => {
    load.push(fillerRequest(next++, options));
  };
  for (let i = 0; i < warmup; i++) filler();
  let k = 0;
  for (let run = 0; run < options.runsPerPrompt; run++) {
    for (let promptIndex = 0; promptIndex < promptCount; promptIndex++) {
      load.push({ kind: 'probe', promptIndex, run });
      const after = Math.floor(((k + 1) * spread) / probes) - Math.floor((k * spread) / probes);
      for (let i = 0; i < after; i++) filler();
      k++;
    }
  }
  return { references: promptCount, load, probes, fillers };
}
