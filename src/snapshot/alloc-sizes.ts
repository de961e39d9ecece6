/**
 * The sizes of one device's alloc trace entries, kept until the end (how many exceed the largest
 * allocatable block is known only once every segment was read). Runs of one size are stored once,
 * in growing typed arrays: a ring buffer of one entry repeated by reference (1 byte of pickle
 * each) takes no memory per entry, and no JS array reaches V8's limit on its length.
 */

export class AllocSizes {
  #sizes = new Float64Array(64);
  #repeats = new Float64Array(64);
  #runs = 0;
  #count = 0;
  #largest = 0;

  get count(): number {
    return this.#count;
  }

  get largest(): number {
    return this.#largest;
  }

  add(size: number): void {
    this.#count++;
    if (size > this.#largest) this.#largest = size;
    if (this.#runs > 0 && this.#sizes[this.#runs - 1] === size) {
      this.#repeats[this.#runs - 1]!++;
      return;
    }
    if (this.#runs === this.#sizes.length) {
      this.#sizes = grown(this.#sizes);
      this.#repeats = grown(this.#repeats);
    }
    this.#sizes[this.#runs] = size;
    this.#repeats[this.#runs++] = 1;
  }

  /** How many sizes are above `bytes`. */
  countOver(bytes: number): number {
    let over = 0;
    for (let run = 0; run < this.#runs; run++) if (this.#sizes[run]! > bytes) over += this.#repeats[run]!;
    return over;
  }
}

function grown(values: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> {
  const bigger = new Float64Array(values.length * 2);
  bigger.set(values);
  return bigger;
}
