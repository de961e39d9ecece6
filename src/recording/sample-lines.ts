/**
 * What one part of a recording says of its sample lines, line by line, for both readers (the
 * text in memory, read-recording.ts, and the stream, stream-recording.ts): a line that is not
 * JSON or not a sample costs a warning and the line (past MAX_LINE_WARNINGS, one sentence sums
 * up the rest), a torn last line is said, and samples out of time order are noticed once.
 */

/** Warnings about single lines beyond this many are summed up in one. */
const MAX_LINE_WARNINGS = 5;

export type Accept<T> = (value: unknown) => { ok: true; data: T } | { ok: false; message: string };

function takenAtOf(value: unknown): number {
  const takenAt = (value as { takenAt?: unknown } | null)?.takenAt;
  return typeof takenAt === 'string' ? Date.parse(takenAt) : Number.NaN;
}

export class SampleLines<T> {
  readonly #file: string;
  readonly #accept: Accept<T>;
  readonly #onWarning: (message: string) => void;
  #badLines = 0;
  #previous: number | null = null;
  #outOfOrder: number | null = null;

  constructor(file: string, accept: Accept<T>, onWarning: (message: string) => void) {
    this.#file = file;
    this.#accept = accept;
    this.#onWarning = onWarning;
  }

  /** Whether a sample came earlier than the one before it (the caller sorts). */
  get outOfOrder(): boolean {
    return this.#outOfOrder !== null;
  }

  /** The sample on a complete line and its time, or null: blank, or skipped with a warning. */
  take(line: number, text: string): { value: T; t: number } | null {
    if (text.trim() === '') return null;
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      return this.#bad(`line ${line} is not JSON`);
    }
    const accepted = this.#accept(json);
    if (!accepted.ok) return this.#bad(`line ${line} is not a valid sample (${accepted.message})`);
    const t = takenAtOf(accepted.data);
    if (!Number.isFinite(t)) return this.#bad(`line ${line} is not a valid sample (no takenAt time)`);
    if (this.#previous !== null && t < this.#previous) this.#outOfOrder ??= line;
    this.#previous = t;
    return { value: accepted.data, t };
  }

  /** The last line, without its newline: what a crash leaves. */
  incomplete(line: number): void {
    this.#onWarning(`${this.#file}: line ${line} is incomplete (the recorder stopped mid-write); skipped`);
  }

  tooLong(line: number, maxBytes: number): void {
    this.#bad(`line ${line} is longer than ${maxBytes} bytes, more than any sample`);
  }

  /** The part's summing-up warnings, once its last line is taken. */
  finish(): void {
    if (this.#badLines > MAX_LINE_WARNINGS) this.#onWarning(`${this.#file}: ${this.#badLines - MAX_LINE_WARNINGS} more bad lines skipped`);
    if (this.#outOfOrder !== null) {
      this.#onWarning(`${this.#file}: samples are out of time order (line ${this.#outOfOrder} is earlier than the line before it); read in time order`);
    }
  }

  #bad(what: string): null {
    this.#badLines++;
    if (this.#badLines <= MAX_LINE_WARNINGS) this.#onWarning(`${this.#file}: ${what}; skipped`);
    return null;
  }
}
