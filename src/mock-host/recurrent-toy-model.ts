/**
 * The "model" behind the fake OpenAI-compatible server: small, deterministic and recurrent, so a
 * sequence's output depends on a state carried from token to token, as in the Mamba case of the
 * write-up. Forty word tokens; a 16-number state per sequence, updated by each token (a tanh
 * recurrence with a position phase, so greedy output wanders rather than looping); next-token
 * logits read from the state. Six pairs of synonyms share their output row, the second a hair
 * below the first (0.03 to 0.12 nats, varying with the state): whenever one of them is the top
 * token, the runner-up is a near-tie, as real models have between words that fit equally well.
 * Everything else is usually decided by a nat or more. Plain float64 arithmetic: the same on
 * every machine.
 */
import { seededRandom } from './seeded-random.js';

export const TOY_VOCABULARY: readonly string[] = [
  ' the', ' a', ' cat', ' dog', ' bird', ' sat', ' ran', ' flew', ' on', ' under',
  ' over', ' mat', ' tree', ' roof', ' and', ' then', ' slept', ' ate', ' fish', ' seeds',
  ' in', ' sun', ' rain', ' quietly', ' happily', '.', ',', ' again', ' near', ' river',
  ' big', ' large', ' small', ' little', ' quick', ' fast', ' said', ' told', ' home', ' house',
];

/** Pairs [first, second] of synonyms: the second's logit is the first's minus a small gap. */
export const TOY_SYNONYMS: readonly (readonly [number, number])[] = [
  [30, 31],
  [32, 33],
  [34, 35],
  [36, 37],
  [38, 39],
];

const DIM = 16;
const LOGIT_SCALE = 3;

export interface ToyModel {
  readonly vocabulary: readonly string[];
  /** Token ids of a text: each whitespace-separated word hashed onto the vocabulary. */
  tokenize(text: string): number[];
  initialState(): Float64Array;
  /** The state after `token` at `position` (0 = the first prompt token). */
  step(state: Float64Array, token: number, position: number): Float64Array;
  logits(state: Float64Array): Float64Array;
}

function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 0x01000193) >>> 0;
  return hash;
}

export function toyModel(seed = 7): ToyModel {
  const random = seededRandom(seed);
  const matrix = (rows: number, sd: number): Float64Array[] => Array.from({ length: rows }, () => Float64Array.from({ length: DIM }, () => random.normal(sd)));
  const recurrent = matrix(DIM, 0.9 / Math.sqrt(DIM));
  const embedding = matrix(TOY_VOCABULARY.length, 1);
  const output = matrix(TOY_VOCABULARY.length, 1);
  const bias = Float64Array.from(TOY_VOCABULARY, () => random.normal(0.5));
  const frequency = Float64Array.from({ length: DIM }, () => 0.3 + random.next());
  const phase = Float64Array.from({ length: DIM }, () => 2 * Math.PI * random.next());
  const gapRow = Float64Array.from({ length: DIM }, () => random.normal(1));
  for (const [first, second] of TOY_SYNONYMS) {
    output[second] = output[first]!;
    bias[second] = bias[first]!;
  }
  const dot = (a: Float64Array, b: Float64Array): number => {
    let sum = 0;
    for (let i = 0; i < DIM; i++) sum += a[i]! * b[i]!;
    return sum;
  };
  return {
    vocabulary: TOY_VOCABULARY,
    tokenize: (text) =>
      text
        .split(/\s+/)
        .filter((word) => word !== '')
        .map((word) => fnv1a(word.toLowerCase()) % TOY_VOCABULARY.length),
    initialState: () => new Float64Array(DIM),
    step: (state, token, position) => {
      const next = new Float64Array(DIM);
      const input = embedding[token]!;
      for (let i = 0; i < DIM; i++) next[i] = Math.tanh(dot(recurrent[i]!, state) + input[i]! + 0.6 * Math.sin(position * frequency[i]! + phase[i]!));
      return next;
    },
    logits: (state) => {
      const logits = Float64Array.from(TOY_VOCABULARY, (_, j) => LOGIT_SCALE * dot(output[j]!, state) + bias[j]!);
      const gap = 0.03 + 0.09 / (1 + Math.exp(-dot(gapRow, state)));
      for (const [first, second] of TOY_SYNONYMS) logits[second] = logits[first]! - gap;
      return logits;
    },
  };
}

/** log-softmax of logits. */
export function logSoftmax(logits: Float64Array): Float64Array {
  let max = -Infinity;
  for (const value of logits) max = Math.max(max, value);
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);
  const log = max + Math.log(sum);
  return logits.map((value) => value - log);
}
