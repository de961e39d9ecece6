/**
 * A streaming scan of Prometheus exposition text that keeps only the sample lines of the metric
 * families asked for, so that the parser never sees the rest of a page: a hostile /metrics (one
 * 30 MB line, millions of tiny lines, a huge label value) costs one pass of indexOf over it and
 * memory bounded by the caps below, whatever its size. It also notes what the reader needs to
 * tell an empty body or an HTML page from Prometheus text.
 *
 * What it keeps matches what parse-prometheus-text-format would have read: lines split on "\n",
 * trimmed (so "\r\n" works), a sample's name ending at "{", a space or a tab. Comment lines
 * (HELP, TYPE) are not kept: gpu-layers reads sample values only. A last line without its "\n"
 * is dropped, as the text format requires every line to end with one
 * (https://prometheus.io/docs/instrumenting/exposition_formats/, "Line format"): a body cut
 * short must not turn "12" into "1".
 */

export type FamilyLinesFailure = { reason: 'line-too-long'; name: string; limit: number } | { reason: 'too-much-kept'; limit: number };

export class FamilyLinesError extends Error {
  constructor(readonly failure: FamilyLinesFailure) {
    super(failure.reason === 'line-too-long' ? `a ${failure.name} line is longer than ${failure.limit} characters` : `more than ${failure.limit} characters of the metric lines read`);
    this.name = 'FamilyLinesError';
  }
}

export interface FamilyLinesLimits {
  /** The longest kept line, in characters; a longer one fails the scan. */
  maxLineChars: number;
  /** All kept lines together, in characters; more fails the scan. */
  maxKeptChars: number;
}

/** Longer than any family name read; a line whose name runs past it is not one of them. */
const MAX_NAME_CHARS = 128;

const LEADING_SPACE = /^\s+/;

export class FamilyLineFilter {
  readonly kept: string[] = [];
  /** The first character that is not white space, null while there is none (an empty body so far). */
  firstVisible: string | null = null;
  /** How many runs of sample lines of other families went by (a family is a run of one name). */
  otherFamilies = 0;
  #keptChars = 0;
  /** The current line, while it may still be kept (its leading white space removed). */
  #pending = '';
  /** The current line is not kept: everything up to the next "\n" is skipped unread. */
  #skipping = false;
  #lastOtherName: string | null = null;

  constructor(
    private readonly families: ReadonlySet<string>,
    private readonly limits: FamilyLinesLimits,
  ) {}

  /** Scans the next piece of the text; throws FamilyLinesError past a limit. */
  push(text: string): void {
    let at = 0;
    while (at < text.length) {
      const newline = text.indexOf('\n', at);
      const end = newline === -1 ? text.length : newline;
      if (!this.#skipping) this.#take(text.slice(at, end), newline !== -1);
      if (newline === -1) return;
      this.#skipping = false;
      at = newline + 1;
    }
  }

  #take(piece: string, complete: boolean): void {
    let line = this.#pending === '' ? piece.replace(LEADING_SPACE, '') : this.#pending + piece;
    this.#pending = '';
    if (line === '') return;
    this.firstVisible ??= line[0]!;
    const name = nameOf(line, complete);
    if (name === undefined) {
      // Not decided yet: the name goes on past this piece.
      this.#pending = line;
      return;
    }
    if (name === null || !this.families.has(name)) {
      this.#noteOther(name);
      this.#skipping = !complete;
      return;
    }
    if (line.length > this.limits.maxLineChars) throw new FamilyLinesError({ reason: 'line-too-long', name, limit: this.limits.maxLineChars });
    if (!complete) {
      this.#pending = line;
      return;
    }
    line = line.trimEnd();
    this.#keptChars += line.length + 1;
    if (this.#keptChars > this.limits.maxKeptChars) throw new FamilyLinesError({ reason: 'too-much-kept', limit: this.limits.maxKeptChars });
    this.kept.push(line);
    this.#lastOtherName = null;
  }

  #noteOther(name: string | null): void {
    // A comment line is no family of its own; a run of samples of one name is one family.
    if (name === '#') return;
    if (name === null || name !== this.#lastOtherName) this.otherFamilies++;
    this.#lastOtherName = name;
  }
}

/**
 * The sample name a line starts with; "#" for a comment line; null when it is longer than any
 * name read; undefined when the line so far ends inside its name.
 */
function nameOf(line: string, complete: boolean): string | null | undefined {
  if (line[0] === '#') return '#';
  const limit = Math.min(line.length, MAX_NAME_CHARS + 1);
  for (let i = 0; i < limit; i++) {
    const c = line[i];
    if (c === '{' || c === ' ' || c === '\t') return line.slice(0, i);
  }
  if (line.length > MAX_NAME_CHARS) return null;
  return complete ? line.trimEnd() : undefined;
}
