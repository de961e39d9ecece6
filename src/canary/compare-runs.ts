/**
 * One prompt's run under load against its reference run alone: a checksum of each token sequence,
 * the first position where they part, the reference token's logprob margin over the runner-up
 * there (from the reference's own top_logprobs), and whether the run under load degenerates after
 * it. Pure.
 *
 * Sequences are compared token by token where both runs have logprobs (the tokens come with
 * them), else character by character on the text, and then the margin is unknown.
 */
import { createHash } from 'node:crypto';

import type { Completion, CompletionPosition } from './completion.js';
import { isNearTie } from './near-tie.js';

export type SequenceUnit = 'token' | 'char';
export type Degeneration = 'repetition' | 'empty';
export type RunOutcome = 'same' | 'noise' | 'mismatch' | 'unjudged';
/** Why a divergence is a mismatch. */
export type MismatchReason = 'wide-margin' | 'degenerate' | 'batch-invariant';

export interface Divergence {
  /** The first position where the sequences differ, from 0, in tokens or characters (`unit`). */
  position: number;
  unit: SequenceUnit;
  /** The item at `position` in each run; null where that run had already ended. */
  referenceToken: string | null;
  loadedToken: string | null;
  /** The reference token's logprob minus the runner-up's there, in nats; null when unknown. */
  marginNats: number | null;
  runnerUp: string | null;
  /** Under load, the chosen token's logprob minus the reference token's (when the reference token is among the alternatives). */
  loadedMarginNats: number | null;
  degenerate: Degeneration | null;
  /** The end of the common part, then each run from the divergence on (truncated). */
  context: string;
  reference: string;
  loaded: string;
}

export interface RunComparison {
  checksum: string;
  outcome: RunOutcome;
  reason: MismatchReason | null;
  divergence: Divergence | null;
}

export interface Judgement {
  nearTieMarginNats: number;
  /** The server is batch-invariant (VLLM_BATCH_INVARIANT=1): every divergence is a mismatch. */
  batchInvariant: boolean;
}

const CONTINUATION_CHARS = 160;
const CONTEXT_CHARS = 60;
/** Fewest items after a divergence before a loop in them counts as degenerate. */
const MIN_LOOP_ITEMS = 12;
/** Share of a window repeating its item from 1 to 4 places back that makes it a loop. */
const LOOP_SHARE = 0.9;

export interface Sequence {
  unit: SequenceUnit;
  items: string[];
}

export function sequenceOf(completion: Completion, unit: SequenceUnit): Sequence {
  if (unit === 'token' && completion.positions !== null) return { unit, items: completion.positions.map((p) => p.token) };
  return { unit: 'char', items: Array.from(completion.text) };
}

/** The unit a completion is checksummed in on its own: its tokens when it has them. */
export function ownUnit(completion: Completion): SequenceUnit {
  return completion.positions === null ? 'char' : 'token';
}

/** "sha256-tokens:<hex>" over the token list, or "sha256-text:<hex>" over the text. */
export function checksumOf(completion: Completion, unit: SequenceUnit = ownUnit(completion)): string {
  const sequence = sequenceOf(completion, unit);
  const hash = createHash('sha256');
  if (sequence.unit === 'token') hash.update(JSON.stringify(sequence.items));
  else hash.update(completion.text);
  return `sha256-${sequence.unit === 'token' ? 'tokens' : 'text'}:${hash.digest('hex')}`;
}

function truncate(text: string, chars: number): string {
  const items = Array.from(text);
  return items.length > chars ? `${items.slice(0, chars - 1).join('')}…` : text;
}

function tailText(text: string, chars: number): string {
  const items = Array.from(text);
  return items.length > chars ? `…${items.slice(items.length - chars + 1).join('')}` : text;
}

/** The reference token's lead over the runner-up at one position, from its alternatives. */
export function marginAt(position: CompletionPosition | undefined): { marginNats: number; runnerUp: string } | null {
  if (position === undefined || position.top === null || position.top.length === 0) return null;
  const own = position.top.find((alt) => alt.token === position.token)?.logprob ?? position.logprob;
  if (own === null) return null;
  let runner: { token: string; logprob: number } | null = null;
  for (const alt of position.top) if (alt.token !== position.token && (runner === null || alt.logprob > runner.logprob)) runner = alt;
  if (runner === null) return null;
  return { marginNats: own - runner.logprob, runnerUp: runner.token };
}

function loadedMargin(position: CompletionPosition | undefined, referenceToken: string | null): number | null {
  if (position === undefined || referenceToken === null || position.top === null) return null;
  const own = position.top.find((alt) => alt.token === position.token)?.logprob ?? position.logprob;
  const theirs = position.top.find((alt) => alt.token === referenceToken)?.logprob;
  return own === null || theirs === undefined ? null : own - theirs;
}

/** A short loop (a period of 1 to 4 items) filling the last stretch of `items`. */
export function isLoop(items: readonly string[]): boolean {
  const words = items.filter((item) => item.trim() !== '');
  if (words.length < MIN_LOOP_ITEMS) return false;
  const window = words.slice(-32);
  for (let period = 1; period <= 4; period++) {
    let repeats = 0;
    for (let i = period; i < window.length; i++) if (window[i] === window[i - period]) repeats++;
    if (repeats >= LOOP_SHARE * (window.length - period)) return true;
  }
  return false;
}

/** Words of a text (for loops in a character sequence). */
function wordsOf(text: string): string[] {
  return text.split(/\s+/).filter((w) => w !== '');
}

/**
 * How the run under load went wrong after the divergence, beyond taking another path: it loops
 * where the reference does not, or it has nothing more to say (whitespace to the end, or nothing
 * at all) where the reference went on. A run that stops cleanly (finish_reason "stop") after
 * saying something is a different path, judged by the margin.
 */
export function degenerationAfter(reference: Completion, loaded: Completion, sequence: { reference: Sequence; loaded: Sequence }, position: number): Degeneration | null {
  const refTail = sequence.reference.items.slice(position);
  const loadedTail = sequence.loaded.items.slice(position);
  const refText = refTail.join('');
  const loadedText = loadedTail.join('');
  if (loadedText.trim() === '' && refText.trim() !== '' && (loaded.finishReason !== 'stop' || loaded.text.trim() === '')) return 'empty';
  const asItems = (tail: string[], text: string): string[] => (sequence.loaded.unit === 'token' ? tail : wordsOf(text));
  if (isLoop(asItems(loadedTail, loadedText)) && !isLoop(asItems(refTail, refText))) return 'repetition';
  return null;
}

export function compareRun(reference: Completion, loaded: Completion, judgement: Judgement): RunComparison {
  const unit: SequenceUnit = reference.positions !== null && loaded.positions !== null ? 'token' : 'char';
  const ref = sequenceOf(reference, unit);
  const got = sequenceOf(loaded, unit);
  const checksum = checksumOf(loaded);
  const length = Math.min(ref.items.length, got.items.length);
  let position = 0;
  while (position < length && ref.items[position] === got.items[position]) position++;
  if (position === length && ref.items.length === got.items.length) return { checksum, outcome: 'same', reason: null, divergence: null };

  const referenceToken = ref.items[position] ?? null;
  const margin = unit === 'token' ? marginAt(reference.positions![position]) : null;
  const degenerate = degenerationAfter(reference, loaded, { reference: ref, loaded: got }, position);
  const divergence: Divergence = {
    position,
    unit,
    referenceToken,
    loadedToken: got.items[position] ?? null,
    marginNats: margin?.marginNats ?? null,
    runnerUp: margin?.runnerUp ?? null,
    loadedMarginNats: unit === 'token' ? loadedMargin(loaded.positions![position], referenceToken) : null,
    degenerate,
    context: tailText(ref.items.slice(0, position).join(''), CONTEXT_CHARS),
    reference: truncate(ref.items.slice(position).join(''), CONTINUATION_CHARS),
    loaded: truncate(got.items.slice(position).join(''), CONTINUATION_CHARS),
  };
  const judged = (outcome: RunOutcome, reason: MismatchReason | null): RunComparison => ({ checksum, outcome, reason, divergence });
  if (divergence.marginNats !== null && !isNearTie(divergence.marginNats, judgement.nearTieMarginNats)) return judged('mismatch', 'wide-margin');
  if (degenerate !== null) return judged('mismatch', 'degenerate');
  if (judgement.batchInvariant) return judged('mismatch', 'batch-invariant');
  if (divergence.marginNats === null) return judged('unjudged', null);
  return judged('noise', null);
}
