/**
 * A process-wide budget of request-body bytes held in memory at once, shared by both data planes. A request
 * reserves its bytes as they arrive (or all at once when it declares a Content-Length) and releases them exactly
 * once when its body has been handed on or dropped. Beyond the budget new bytes are refused: the data plane
 * answers 429 and drops the body unbuffered, so N concurrent maximum-size bodies cannot add up past the budget.
 */
export class BodyBudget {
  readonly limit: number;
  #used = 0;

  /** `limit` in bytes; 0 = unlimited. */
  constructor(limit: number) {
    this.limit = limit;
  }

  /** Bytes currently reserved. */
  get used(): number {
    return this.#used;
  }

  /** A reservation for one request. */
  open(): BodyReservation {
    return new BodyReservation(this);
  }

  /** @internal */
  take(n: number): boolean {
    if (this.limit > 0 && this.#used + n > this.limit) return false;
    this.#used += n;
    return true;
  }

  /** @internal */
  give(n: number): void {
    this.#used -= n;
  }
}

export class BodyReservation {
  readonly #budget: BodyBudget;
  #held = 0;
  #released = false;

  constructor(budget: BodyBudget) {
    this.#budget = budget;
  }

  get held(): number {
    return this.#held;
  }

  /** Reserves `n` more bytes; false (nothing reserved) when the budget cannot hold them. */
  grow(n: number): boolean {
    if (this.#released) return false;
    if (!this.#budget.take(n)) return false;
    this.#held += n;
    return true;
  }

  /** Returns every byte held; idempotent. */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#budget.give(this.#held);
    this.#held = 0;
  }
}
