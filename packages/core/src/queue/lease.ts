import { type Clock, leaseMargin } from '../member/clock.js';

interface Timing {
  heartbeatInterval: number;
  activationInterval: number;
  clockDrift: number;
}

/**
 * A worker's time (S4), on its monotonic clock: its lease deadline, and Redis instants (a
 * delivery's expiry) mapped to lower bounds on its own clock from the latest script reply.
 */
export class LeaseClock {
  readonly #clock: Clock;
  readonly #timing: Timing;
  /** The worker's clock when it sent the latest script that answered, and the Redis time that script read. */
  #sentAt = 0;
  #serverNow = 0;
  #deadline = Number.NEGATIVE_INFINITY;

  constructor(clock: Clock, timing: Timing) {
    this.#clock = clock;
    this.#timing = timing;
  }

  now(): number {
    return this.#clock.now();
  }

  /** Until when the worker may act on its lease (local clock). */
  get deadline(): number {
    return this.#deadline;
  }

  /** δ (see `leaseMargin`). */
  margin(): number {
    return leaseMargin(this.#timing);
  }

  /** A script sent at `sentAt` read Redis time `serverNow`. */
  noteReply(sentAt: number, serverNow: number): void {
    if (sentAt < this.#sentAt) return;
    this.#sentAt = sentAt;
    this.#serverNow = serverNow;
  }

  /** A renewal sent at t0 holds the lease until t0 + A·(1−ρ) − δ; a lease never shrinks. */
  extend(sentAt: number, margin: number): void {
    const t = this.#timing;
    this.#deadline = Math.max(this.#deadline, sentAt + t.activationInterval * (1 - t.clockDrift) - margin);
  }

  /**
   * The earliest local time at which Redis's clock may read `serverMs`: Redis read `serverNow`
   * after the worker sent its script, and the clocks drift apart by at most ρ.
   */
  localTime(serverMs: number): number {
    const rho = this.#timing.clockDrift;
    const ahead = serverMs - this.#serverNow;
    return this.#sentAt + ahead * (ahead >= 0 ? 1 - rho : 1 + rho);
  }
}
