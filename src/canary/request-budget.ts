/**
 * The most requests the canary may send to the server, all phases together: every request takes
 * one before it is sent, so the count can never pass the budget, whatever the plan or the
 * server does.
 */
export class RequestBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  get left(): number {
    return this.limit - this.#used;
  }

  /** Takes one request from the budget; false (and nothing taken) when none is left. */
  tryTake(): boolean {
    if (this.#used >= this.limit) return false;
    this.#used++;
    return true;
  }
}

/** Thrown when a request would pass the budget: it is not sent. */
export class BudgetExhausted extends Error {
  constructor() {
    super('the request budget is spent');
    this.name = 'BudgetExhausted';
  }
}
