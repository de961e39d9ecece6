/**
 * The pickle memo: values by memo index, as BINPUT, LONG_BINPUT and MEMOIZE number them. Not a
 * Map, which stops at 2^24 entries ("Map maximum size exceeded"), nor one JS array, at which V8
 * aborts the process past about 2^27 elements: the values sit in pages of 2^16. With the first
 * pass's bit set of the indices some GET fetches, an entry's place is its rank among those
 * indices, so memory follows the entries kept (8 bytes each), not the indices; without it, the
 * place is the index itself, which the reader keeps below the file offset.
 */

const PAGE_BITS = 16;
const PAGE_MASK = (1 << PAGE_BITS) - 1;

/** Set bits per byte value. */
const BITS_IN: Uint8Array = (() => {
  const table = new Uint8Array(256);
  for (let byte = 1; byte < 256; byte++) table[byte] = (byte & 1) + table[byte >>> 1]!;
  return table;
})();

export class PickleMemo {
  readonly #keep: Uint8Array | null;
  /** Per 8 bytes of `#keep` (64 indices): the set bits before them. */
  readonly #rankBefore: Uint32Array | null;
  readonly #pages: (unknown[] | undefined)[] = [];

  /** `keep`: a bit per memo index that some GET fetches; null keeps every index. */
  constructor(keep: Uint8Array | null) {
    this.#keep = keep;
    if (keep === null) {
      this.#rankBefore = null;
      return;
    }
    const rankBefore = new Uint32Array((keep.length >>> 3) + 1);
    let rank = 0;
    for (let i = 0; i < keep.length; i++) {
      if ((i & 7) === 0) rankBefore[i >>> 3] = rank;
      rank += BITS_IN[keep[i]!]!;
    }
    this.#rankBefore = rankBefore;
  }

  /** Whether a value stored under `index` is kept. */
  keeps(index: number): boolean {
    const keep = this.#keep;
    return keep === null || (index >>> 3 < keep.length && (keep[index >>> 3]! & (1 << (index & 7))) !== 0);
  }

  /** Stores `value` (never undefined) under `index`, when some GET fetches it. */
  set(index: number, value: unknown): void {
    if (!this.keeps(index)) return;
    const place = this.#place(index);
    let page = this.#pages[place >>> PAGE_BITS];
    if (page === undefined) {
      while (this.#pages.length <= place >>> PAGE_BITS) this.#pages.push(undefined);
      page = this.#pages[place >>> PAGE_BITS] = [];
    }
    // Filled in order in a page mostly; a hole (an index never stored) stays undefined.
    page[place & PAGE_MASK] = value;
  }

  /** The value stored under `index`; undefined when none was. */
  get(index: number): unknown {
    if (!this.keeps(index)) return undefined;
    const place = this.#place(index);
    return this.#pages[place >>> PAGE_BITS]?.[place & PAGE_MASK];
  }

  #place(index: number): number {
    const keep = this.#keep;
    if (keep === null) return index;
    const byte = index >>> 3;
    let rank = this.#rankBefore![byte >>> 3]!;
    for (let i = byte & ~7; i < byte; i++) rank += BITS_IN[keep[i]!]!;
    return rank + BITS_IN[keep[byte]! & ((1 << (index & 7)) - 1)]!;
  }
}
