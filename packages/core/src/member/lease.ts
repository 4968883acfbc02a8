import type { Logger } from 'pino';
import { RedisUnavailableError } from '../errors.js';
import { describe, renewalFailure } from '../failures.js';
import type { MemberView } from '../scripts.js';
import { SingleFlight } from '../single-flight.js';
import { wakeAt } from '../wake-at.js';
import type { Call } from './calls.js';
import { type Clock, leaseDeadline, leaseMargin, localInstant } from './clock.js';
import type { Advise } from './health.js';
import type { RenewalEvent } from './types.js';

export interface LeaseSettings {
  heartbeatInterval: number;
  activationInterval: number;
  preparationInterval: number;
  clockDrift: number;
  clock: Clock;
}

/** What the lease keeper needs of its member: a narrow interface, in the manner of BullMQ's LockManager. */
export interface LeaseHost {
  /** Sends one renewal. */
  send(): Promise<Call>;
  /** A renewal's reply, after the lease was extended by it. */
  renewed(reply: Call): void;
  /** A failed renewal the member takes as its own (it was expelled): not an outage. */
  refused(error: unknown): boolean;
  /** False once the member leaves: replies extend nothing any more. */
  accepting(): boolean;
  /** The deadline passed while the member held a slot. */
  lapsed(): void;
  /** A reply that never came would pair later replies with the wrong requests: reopen the connection. */
  resetConnection(): void;
  emit(event: RenewalEvent): void;
  advise: Advise;
  log: Logger;
}

/**
 * One lease on one server: when to renew (every H, at once on request, never two at a time),
 * the local deadline S4 gives each renewal, and the timers that make the next in line renew
 * when a holder's lease runs out. The renewal itself is the host's (`LeaseHost.send`); so is
 * what a lapsed deadline means (`LeaseHost.lapsed`). Quorum mode runs one per server.
 */
export class LeaseKeeper {
  readonly #s: LeaseSettings;
  readonly #host: LeaseHost;
  #deadline = Number.NEGATIVE_INFINITY;
  /** The group's activation interval, as its server said: the lease never outlasts it (S4). */
  #groupActivation = 0;
  #lastStart = 0;
  #stopped = false;
  readonly #flight = new SingleFlight(
    () => this.#renewOnce(),
    () => this.#stopped,
  );
  #down = false;
  #renewTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  /** Cancel the takeover and prepare wake-ups (`wakeAt`). */
  #unwatch: (() => void)[] = [];

  constructor(settings: LeaseSettings, host: LeaseHost) {
    this.#s = settings;
    this.#host = host;
  }

  /** The local lease deadline (ms on the member's clock). */
  get deadline(): number {
    return this.#deadline;
  }

  /** The lease deadline has not passed. */
  valid(): boolean {
    return this.#s.clock.now() < this.#deadline;
  }

  /** δ (see `leaseMargin`). */
  margin(): number {
    return leaseMargin(this.#s);
  }

  /**
   * S4: a renewal sent at t0 lets the member act until t0 + A·(1−ρ) − δ, with the group's A
   * where it is shorter than the member's own (Redis gives the lease the group's A). A reply
   * handled after the deadline (its timer not yet run) must not revive the lease: the caller
   * checks the deadline first.
   */
  #extend({ sentAt, view }: Call, margin: number): void {
    const s = this.#s;
    if (view.activationInterval > 0) this.#groupActivation = view.activationInterval;
    const a = Math.min(s.activationInterval, this.#groupActivation || s.activationInterval);
    const deadline = leaseDeadline(sentAt, a, s.clockDrift, margin);
    if (deadline > this.#deadline) this.#deadline = deadline;
    if (this.#deadlineTimer) this.arm();
    this.#host.emit({ outcome: 'ok', sentAt, receivedAt: s.clock.now(), leaseDeadline: this.#deadline });
  }

  /** The join's reply: the first lease. */
  joined(reply: Call): void {
    this.#lastStart = reply.sentAt;
    this.#extend(reply, this.margin());
  }

  async #renewOnce(): Promise<void> {
    const margin = this.margin();
    let reply: Call;
    try {
      reply = await this.#host.send();
    } catch (error) {
      if (!this.#host.refused(error)) this.#failed(error);
      return;
    }
    // The next is due one H after this one's start.
    this.#lastStart = reply.sentAt;
    const recovered = this.#down;
    this.#down = false;
    if (!this.#host.accepting()) return;
    if (recovered) this.#host.log.info('Redis answers again');
    // S4: a reply handled after the deadline (its timer not yet run) must not revive the lease.
    this.check();
    this.#extend(reply, margin);
    if (reply.view.rejoined)
      this.#host.log.warn('the group had dropped this member (lease lapsed or state lost); rejoined');
    this.#host.renewed(reply);
  }

  /**
   * A renewal failed: the next is due one H after it; the first failure of an outage is an
   * advisory. A deadline that passed is acted on now, not when its timer runs (a clock that
   * stepped forward passes it before the timer, which counts real time).
   */
  #failed(error: unknown): void {
    const now = this.#s.clock.now();
    this.#lastStart = now;
    this.#host.emit({ outcome: 'failed', sentAt: now, receivedAt: now, leaseDeadline: this.#deadline, error });
    if (!this.valid()) this.check();
    if (error instanceof RedisUnavailableError && error.timedOut) this.#host.resetConnection();
    if (this.#down) return;
    this.#down = true;
    this.#host.advise(renewalFailure(error), `renewal failed: ${describe(error)}`, { error: describe(error) });
  }

  /** Watches the deadline while the member holds a slot: the host's `lapsed` runs once it really passed. */
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
    this.#host.lapsed();
  }

  /** Starts the heartbeat: the first renewal one H after the last one's start. */
  start(): void {
    this.#schedule(this.#lastStart + this.#s.heartbeatInterval);
  }

  /** Renews now, or right after the renewal in flight. Never more than one in flight. */
  async renew(): Promise<void> {
    await this.#flight.run();
    this.#schedule(this.#lastStart + this.#s.heartbeatInterval);
  }

  /**
   * Renews now, beside the renewal in flight if there is one: that one left first on the same
   * connection, so Redis runs the two in order and their replies come back in order, each
   * extending the lease from its own t0. For what must not wait a round trip behind a plain
   * heartbeat: a quorum member's proposal.
   */
  async renewNow(): Promise<void> {
    if (this.#stopped) return;
    if (!this.#flight.running) return this.renew();
    await this.#renewOnce();
    this.#schedule(this.#lastStart + this.#s.heartbeatInterval);
  }

  /**
   * The next in line wakes at the slot holders' earliest lease deadline (takeover) and at the
   * moment that lease turns older than P (prepare), as the reply places them on the local clock;
   * each wake-up just renews, and the script decides with Redis's clock. Nothing polls. Not a
   * millisecond early (`wakeAt`): a renewal sent before the deadline is only told "not yet".
   * No margin either: Redis reads its clock in whole ms, rounded down, and usually before the
   * midpoint of the round trip that placed it (the script runs after the read), so the local
   * instant lies at or after the deadline; one that lies before costs a "not yet" and a round trip.
   */
  watch(view: MemberView, midpoint: number, watching: boolean): void {
    this.unwatch();
    if (!watching || view.watchDeadline <= 0) return;
    const { clock, preparationInterval: p, activationInterval: a } = this.#s;
    const wake = (serverMs: number) =>
      this.#unwatch.push(wakeAt(clock, localInstant(serverMs, view.serverNow, midpoint), () => void this.renew()));
    wake(view.watchDeadline);
    if (p > 0 && view.role === 'standby') wake(view.watchDeadline - a + p);
  }

  unwatch(): void {
    if (this.#unwatch.length === 0) return;
    for (const cancel of this.#unwatch) cancel();
    this.#unwatch = [];
  }

  /**
   * No renewal is sent after this. One in flight was sent before whatever the caller sends next
   * on the same connection, so Redis runs it first.
   */
  stop(): void {
    this.#stopped = true;
    this.unwatch();
    for (const timer of [this.#renewTimer, this.#deadlineTimer]) clearTimeout(timer);
    this.#deadlineTimer = undefined;
  }

  #schedule(at: number): void {
    clearTimeout(this.#renewTimer);
    if (this.#stopped) return;
    this.#renewTimer = setTimeout(() => void this.renew(), Math.max(0, at - this.#s.clock.now()));
    this.#renewTimer.unref();
  }
}
