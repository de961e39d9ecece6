/**
 * The canary's bearer token: read only from the environment (a flag would put it in the shell's
 * history and in `ps`), sent only as `Authorization: Bearer`, and kept where neither
 * JSON.stringify nor util.inspect nor a template string can reach it. Whatever the server sends
 * back goes through `redact()` before it can reach an error message or a result: a hostile or
 * careless server may echo the header.
 */
import { GpuLayersError } from '../errors.js';

export const CANARY_TOKEN_VARIABLE = 'GPU_LAYERS_CANARY_TOKEN';

const REDACTED = '[redacted]';

export class BearerToken {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The header value; the only way to read the token. */
  authorization(): string {
    return `Bearer ${this.#value}`;
  }

  /** `text` with every occurrence of the token replaced. */
  redact(text: string): string {
    return text.includes(this.#value) ? text.split(this.#value).join(REDACTED) : text;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return `BearerToken ${REDACTED}`;
  }
}

/** The token in GPU_LAYERS_CANARY_TOKEN, or null when unset or empty. */
export function readBearerToken(env: Readonly<Record<string, string | undefined>>): BearerToken | null {
  const value = env[CANARY_TOKEN_VARIABLE]?.trim();
  if (value === undefined || value === '') return null;
  // A header value cannot carry control characters or spaces; say so without showing the value.
  if (!/^[\x21-\x7e]+$/.test(value)) {
    throw new GpuLayersError('INVALID_OPTIONS', `${CANARY_TOKEN_VARIABLE} holds characters an Authorization header cannot carry (spaces, control characters or non-ASCII); it was not sent`);
  }
  // Too short to redact safely: every occurrence of a 1-3 character string in a reply would go.
  if (value.length < 4) throw new GpuLayersError('INVALID_OPTIONS', `${CANARY_TOKEN_VARIABLE} is shorter than 4 characters; it was not sent`);
  return new BearerToken(value);
}

/** Redaction with or without a token. */
export function redactWith(token: BearerToken | null): (text: string) => string {
  return token === null ? (text) => text : (text) => token.redact(text);
}
