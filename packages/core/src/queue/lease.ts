import { type Clock, leaseDeadline, leaseMargin, localInstant } from '../member/clock.js';
import { wakeAt } from '../wake-at.js';

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
    this.#deadline = Math.max(this.#deadline, leaseDeadline(sentAt, t.activationInterval, t.clockDrift, margin));
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

/**
 * Re-delivery timed to the Redis clock (DESIGN §11): the worker arms one wake-up at the moment
 * its latest script reply said something becomes reapable (a lease deadline or a delivery's
 * expiry), mapped to the local clock at the round trip's midpoint, and renews when it fires; the
 * renewal's script reaps and dispatches, deciding with Redis's clock. Not a millisecond early
 * (`wakeAt`: a Node timer fires up to a millisecond before its delay, and a renewal sent before
 * the moment only finds nothing to reap), and no margin either. The reply gives Redis's time to
 * the microsecond: its whole ms alone, rounded down, put the moment half a ms late on average.
 * The script read it before the midpoint (after the request's trip; its own run and the reply's
 * trip come after), so the moment mapped is a little late, not early, while the two trips take
 * about as long, and the renewal sent then reaches Redis a trip later still. Every worker
 * arms one: any worker's renewal hands the task to the best free worker, and one that stopped
 * watching (busy, or its reply came before the change) would leave a gap of up to H. A jitter of
 * up to JITTER ms spreads the herd: the first renewal hands the task on, the others find nothing
 * to reap and only renew early (their next renewal moves to H after it), at most one script each
 * per lapse or expiry, and their renewals do not fall into step. One millisecond (the time of a few
 * renewals in Redis) spreads them enough, and each re-delivery waits half of it on average.
 */
export class ReapWatch {
  static readonly JITTER = 1;
  readonly #clock: Clock;
  readonly #fire: () => void;
  /** The latest reply's round-trip midpoint (local clock) and the Redis time its script read. */
  #midpoint = 0;
  #serverNow = 0;
  #at = Number.POSITIVE_INFINITY;
  #cancel: (() => void) | undefined;

  constructor(clock: Clock, fire: () => void) {
    this.#clock = clock;
    this.#fire = fire;
  }

  /**
   * A script sent at `sentAt`, answered now, read Redis time `serverNow` (ms, with its fraction)
   * and said `reapAt` (0: nothing to reap; negative: it did not look, as a completion, and the
   * moment armed stays).
   */
  arm(sentAt: number, serverNow: number, reapAt: number): void {
    this.#midpoint = (sentAt + this.#clock.now()) / 2;
    this.#serverNow = serverNow;
    if (reapAt < 0) return;
    this.stop();
    if (reapAt > 0) this.armBy(reapAt);
  }

  /**
   * Fires by Redis time `reapAt` at the latest: a delivery the worker read expires then (the
   * script that dispatched it, an enqueue or another worker's, replied to someone else).
   */
  armBy(reapAt: number): void {
    const at = localInstant(reapAt, this.#serverNow, this.#midpoint) + Math.random() * ReapWatch.JITTER;
    if (at >= this.#at) return;
    this.stop();
    this.#at = at;
    this.#cancel = wakeAt(this.#clock, at, () => {
      this.#cancel = undefined;
      this.#at = Number.POSITIVE_INFINITY;
      this.#fire();
    });
  }

  stop(): void {
    this.#cancel?.();
    this.#cancel = undefined;
    this.#at = Number.POSITIVE_INFINITY;
  }
}
