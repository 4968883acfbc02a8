import { ActivationEndedError } from '../errors.js';
import type { ActivateReason, DeactivateReason } from './types.js';

/** The activation the member holds: delivered, not yet ended. */
export interface Held {
  readonly epoch: number;
  readonly slot: number;
  readonly reason: ActivateReason;
  /** Aborted when this activation ends; handed to the application with `activate`. */
  readonly signal: AbortSignal;
}

/**
 * The member's epochs, each pending → held → settling (its deactivate handler runs) →
 * releasing (the release script runs) → released. Epochs only grow, so everything at or below
 * the floor is done with: delivered, released, or revoked before it was delivered. S6's last
 * line lives here: an epoch at or below the floor is never delivered (again), whatever a
 * server reports.
 */
export class EpochLedger {
  #floor = 0;
  #pending: number | undefined;
  #held: (Held & { controller: AbortController }) | undefined;
  readonly #settling = new Set<number>();
  readonly #releasing = new Set<number>();
  /**
   * The next activation's controller, made ahead: the first AbortController of a process costs
   * about a millisecond (Node loads the class on first use), which would otherwise fall between
   * the grant and the activate handler of a standby's first takeover.
   */
  #nextController: AbortController | undefined = new AbortController();

  /** Every epoch up to it was delivered, released or revoked. */
  get floor(): number {
    return this.#floor;
  }

  get pending(): number | undefined {
    return this.#pending;
  }

  get held(): Held | undefined {
    return this.#held;
  }

  /** Its deactivate handler has not settled: the slot must not be released yet (demote before promote). */
  isSettling(epoch: number): boolean {
    return this.#settling.has(epoch);
  }

  /** A renewal's reply granted `epoch`: it waits in the action queue to be delivered. */
  pend(epoch: number): void {
    this.#pending = epoch;
  }

  /** The pending activation (or `epoch`, if it is the pending one) is no longer waiting: it was taken up, or the member leaves. */
  unpend(epoch?: number): void {
    if (epoch === undefined || this.#pending === epoch) this.#pending = undefined;
  }

  /** Granted and then taken back before it was delivered: void for good. */
  revoke(epoch: number): void {
    if (this.#pending === epoch) this.#pending = undefined;
    this.retire(epoch);
  }

  /** Epochs up to `epoch` are never delivered (again). */
  retire(epoch: number): void {
    if (epoch > this.#floor) this.#floor = epoch;
  }

  /** Whether `epoch` may still be delivered: above the floor, and nothing held. */
  deliverable(epoch: number): boolean {
    return epoch > this.#floor && this.#held === undefined;
  }

  /** Delivers `epoch`: it becomes the held activation, and is retired (never delivered again). */
  hold(epoch: number, slot: number, reason: ActivateReason): Held {
    if (!this.deliverable(epoch)) {
      throw new Error(`understudy bug: epoch ${epoch} is not deliverable (floor ${this.#floor})`);
    }
    if (this.#pending === epoch) this.#pending = undefined;
    const controller = this.#nextController ?? new AbortController();
    this.#nextController = undefined;
    this.#held = { epoch, slot, reason, signal: controller.signal, controller };
    this.retire(epoch);
    return this.#held;
  }

  /** The held activation ends: its signal aborts, and it settles until its deactivate handler did. */
  drop(reason: DeactivateReason): Held | undefined {
    const held = this.#held;
    if (!held) return undefined;
    this.#held = undefined;
    this.#settling.add(held.epoch);
    held.controller.abort(new ActivationEndedError(held.epoch, reason));
    return held;
  }

  settled(epoch: number): void {
    this.#settling.delete(epoch);
  }

  /** Starts releasing `epoch`; false when a release of it is already in flight. */
  beginRelease(epoch: number): boolean {
    if (this.#releasing.has(epoch)) return false;
    this.#releasing.add(epoch);
    return true;
  }

  endRelease(epoch: number): void {
    this.#releasing.delete(epoch);
  }
}
