import type { MemberView } from '../scripts.js';
import { type Clock, lagMonitor } from './clock.js';

export interface LeaseSettings {
  heartbeatInterval: number;
  activationInterval: number;
  preparationInterval: number;
  clockDrift: number;
  clock: Clock;
}

/**
 * One lease on one server: when to renew (every H, at once on request, never two at a time),
 * the local deadline S4 gives each renewal, and the timers that make the next in line renew
 * when a holder's lease runs out. The renewal itself is the caller's (`renewOnce`); so is what
 * a lapsed deadline means. Quorum mode runs one per server.
 */
export class LeaseKeeper {
  readonly #s: LeaseSettings;
  readonly #renewOnce: () => Promise<void>;
  readonly #onLapse: () => void;
  #deadline = Number.NEGATIVE_INFINITY;
  /** The group's activation interval, as its server said: the lease never outlasts it (S4). */
  #groupActivation = 0;
  #lastStart = 0;
  #stopped = false;
  #renewing = false;
  #again = false;
  #down = false;
  #renewTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  #prepareTimer: NodeJS.Timeout | undefined;

  constructor(settings: LeaseSettings, renewOnce: () => Promise<void>, onLapse: () => void) {
    this.#s = settings;
    this.#renewOnce = renewOnce;
    this.#onLapse = onLapse;
  }

  /** The local lease deadline (ms on the member's clock). */
  get deadline(): number {
    return this.#deadline;
  }

  /** The lease deadline has not passed. */
  valid(): boolean {
    return this.#s.clock.now() < this.#deadline;
  }

  /**
   * δ: the measured event-loop lag, capped so that a stall that is over cannot leave the member
   * without a usable lease (at least 2 H of it remain). A stall beyond the cap breaks S1's
   * assumption (b) however δ is chosen; fencing is what protects data then.
   */
  margin(): number {
    const s = this.#s;
    const cap = s.activationInterval * (1 - s.clockDrift) - 2 * s.heartbeatInterval;
    return Math.min(lagMonitor.margin(), Math.max(lagMonitor.baseMargin, cap));
  }

  /**
   * S4: a renewal sent at t0 lets the member act until t0 + A·(1−ρ) − δ, with the group's A
   * where it is shorter than the member's own (Redis gives the lease the group's A). A reply
   * handled after the deadline (its timer not yet run) must not revive the lease: the caller
   * checks the deadline first.
   */
  extend(sentAt: number, margin: number, groupActivation: number): void {
    const s = this.#s;
    if (groupActivation > 0) this.#groupActivation = groupActivation;
    const a = Math.min(s.activationInterval, this.#groupActivation || s.activationInterval);
    const deadline = sentAt + a * (1 - s.clockDrift) - margin;
    if (deadline > this.#deadline) this.#deadline = deadline;
    if (this.#deadlineTimer) this.arm();
  }

  /** A renewal failed: the next is due one H after it. True when Redis answered until now (an outage begins). */
  failed(): boolean {
    this.#lastStart = this.#s.clock.now();
    const began = !this.#down;
    this.#down = true;
    return began;
  }

  /**
   * A renewal sent at `sentAt` was answered: the next is due one H after it. True when the
   * failures before it ended (Redis answers again).
   */
  answered(sentAt: number): boolean {
    this.#lastStart = sentAt;
    const ended = this.#down;
    this.#down = false;
    return ended;
  }

  /** Watches the deadline while the member holds a slot: `onLapse` runs once it really passed. */
  arm(): void {
    clearTimeout(this.#deadlineTimer);
    const delay = this.#deadline - this.#s.clock.now();
    this.#deadlineTimer = setTimeout(() => this.check(), Math.max(0, delay));
    this.#deadlineTimer.unref();
  }

  disarm(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
  }

  /** Timers can fire a little early: "not yet" re-arms, it never gives up. */
  check(): void {
    if (!this.#deadlineTimer) return;
    if (this.valid()) {
      this.arm();
      return;
    }
    this.disarm();
    this.#onLapse();
  }

  /** Starts the heartbeat: the first renewal one H after the last one's start. */
  start(): void {
    this.#schedule(this.#lastStart + this.#s.heartbeatInterval);
  }

  /** Renews now, or right after the renewal in flight. Never more than one in flight. */
  async renew(): Promise<void> {
    if (this.#stopped) return;
    if (this.#renewing) {
      this.#again = true;
      return;
    }
    this.#renewing = true;
    try {
      do {
        this.#again = false;
        await this.#renewOnce();
      } while (this.#again && !this.#stopped);
    } finally {
      this.#renewing = false;
    }
    this.#schedule(this.#lastStart + this.#s.heartbeatInterval);
  }

  /**
   * The next in line arms timers at the slot holders' earliest lease deadline (takeover) and
   * at the moment that lease turns older than P (prepare); each timer just renews, and the
   * script decides with Redis's clock. Nothing polls.
   */
  watch(view: MemberView, midpoint: number, watching: boolean): void {
    this.unwatch();
    if (!watching || view.watchDeadline <= 0) return;
    const now = this.#s.clock.now();
    const toLocal = (serverMs: number) => Math.max(0, midpoint + (serverMs - view.serverNow) - now);
    this.#watchTimer = setTimeout(() => void this.renew(), toLocal(view.watchDeadline) + 1);
    this.#watchTimer.unref();
    const { preparationInterval: p, activationInterval: a } = this.#s;
    if (p > 0 && view.role === 'standby') {
      this.#prepareTimer = setTimeout(() => void this.renew(), toLocal(view.watchDeadline - a + p) + 1);
      this.#prepareTimer.unref();
    }
  }

  unwatch(): void {
    clearTimeout(this.#watchTimer);
    clearTimeout(this.#prepareTimer);
  }

  /**
   * No renewal is sent after this. One in flight was sent before whatever the caller sends next
   * on the same connection, so Redis runs it first.
   */
  stop(): void {
    this.#stopped = true;
    for (const timer of [this.#renewTimer, this.#deadlineTimer, this.#watchTimer, this.#prepareTimer]) {
      clearTimeout(timer);
    }
    this.#deadlineTimer = undefined;
  }

  #schedule(at: number): void {
    clearTimeout(this.#renewTimer);
    if (this.#stopped) return;
    this.#renewTimer = setTimeout(() => void this.renew(), Math.max(0, at - this.#s.clock.now()));
    this.#renewTimer.unref();
  }
}
