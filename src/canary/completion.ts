/**
 * One greedy completion as the canary compares it, whichever API gave it: the text, and where the
 * server returned logprobs, each generated token with its logprob and the top alternatives.
 */
export interface TokenAlternative {
  token: string;
  logprob: number;
}

export interface CompletionPosition {
  token: string;
  /** The chosen token's logprob; null where the server gave none for it. */
  logprob: number | null;
  /** The top alternatives at this position (the chosen token among them); null where none were given. */
  top: TokenAlternative[] | null;
}

export interface Completion {
  text: string;
  /** Per generated token; null when the server returned no logprobs (then only the text is compared). */
  positions: CompletionPosition[] | null;
  /** "length", "stop", ...; null when the server did not say. */
  finishReason: string | null;
}
