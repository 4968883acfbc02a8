import { type IntervalHistogram, monitorEventLoopDelay } from 'node:perf_hooks';

/** A monotonic clock in milliseconds. Tests inject one that runs fast or slow. */
export interface Clock {
  now(): number;
}

export const monotonicClock: Clock = Object.freeze({ now: () => performance.now() });

/** A clock running `rate` times as fast as the real one (1.01 = 1 % fast), for drift tests. */
export function driftingClock(rate: number): Clock {
  const origin = performance.now();
  return { now: () => origin + (performance.now() - origin) * rate };
}

/**
 * `base` (the real one by default) plus the steps a test adds with `jump(ms)`: an NTP step or a
 * resumed VM, which ends a lease on the member's clock before its timers (real time) run.
 */
export function jumpingClock(base: Clock = monotonicClock): Clock & { jump(ms: number): void } {
  let offset = 0;
  return {
    now: () => base.now() + offset,
    jump(ms: number) {
      offset += ms;
    },
  };
}

const BASE_MARGIN_MS = 2;
const WINDOW_MS = 1000;
const WINDOWS = 5;

/**
 * δ of S4: how late this process's timers may fire. Measured with the event-loop delay
 * histogram, process-wide, as the worst delay of the last few seconds plus a small base.
 * Runs only while some member uses it.
 */
class LagMonitor {
  #histogram: IntervalHistogram | undefined;
  #timer: NodeJS.Timeout | undefined;
  #recent: number[] = [];
  #users = 0;

  acquire(): void {
    this.#users += 1;
    if (this.#histogram) return;
    this.#histogram = monitorEventLoopDelay({ resolution: 10 });
    this.#histogram.enable();
    this.#schedule();
  }

  release(): void {
    this.#users = Math.max(0, this.#users - 1);
    if (this.#users > 0 || !this.#histogram) return;
    this.#histogram.disable();
    clearTimeout(this.#timer);
    this.#histogram = undefined;
    this.#recent = [];
  }

  /** The least margin, when the event loop runs on time. */
  readonly baseMargin = BASE_MARGIN_MS;

  /** The margin in ms to keep before a lease deadline. */
  margin(): number {
    const current = this.#histogram ? this.#histogram.max / 1e6 : 0;
    return BASE_MARGIN_MS + Math.max(current, ...this.#recent);
  }

  #schedule(): void {
    this.#timer = setTimeout(() => this.#roll(), WINDOW_MS);
    this.#timer.unref();
  }

  #roll(): void {
    if (!this.#histogram) return;
    this.#schedule();
    this.#recent.push(this.#histogram.max / 1e6);
    if (this.#recent.length > WINDOWS) this.#recent.shift();
    this.#histogram.reset();
  }
}

export const lagMonitor = new LagMonitor();

/**
 * δ: the measured event-loop lag, capped so that a stall that is over cannot leave a member or a
 * queue worker without a usable lease (at least 2 H of it remain). A stall beyond the cap breaks
 * S1's assumption (b) however δ is chosen; fencing is what protects data then.
 */
export function leaseMargin(t: { activationInterval: number; heartbeatInterval: number; clockDrift: number }): number {
  const cap = t.activationInterval * (1 - t.clockDrift) - 2 * t.heartbeatInterval;
  return Math.min(lagMonitor.margin(), Math.max(lagMonitor.baseMargin, cap));
}

/**
 * S4: a renewal sent at local time `sentAt` (before Redis read its clock) lets the holder act
 * until sentAt + A·(1−ρ) − δ on its own clock: always before Redis lets the lease lapse.
 */
export function leaseDeadline(sentAt: number, activationInterval: number, clockDrift: number, margin: number): number {
  return sentAt + activationInterval * (1 - clockDrift) - margin;
}

/**
 * A Redis instant on the local clock, as a script reply places it: Redis read `serverNow` about
 * halfway through the round trip, at local time `midpoint`. For timers that only speed things up
 * (the script decides again with Redis's clock), never for a deadline.
 */
export function localInstant(serverMs: number, serverNow: number, midpoint: number): number {
  return midpoint + (serverMs - serverNow);
}
