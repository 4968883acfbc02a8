import { EventEmitter } from 'node:events';

/**
 * What a group member and a queue worker share: they leave once, whoever asks first — `leave()`,
 * `await using` (Symbol.asyncDispose) or their `signal` option — and every caller waits for the
 * same leaving.
 */
export abstract class Participant<E extends Record<keyof E, unknown[]>> extends EventEmitter<E> {
  #leaving: Promise<void> | undefined;

  /**
   * Leaves. A group member deactivates first (reason `leave`) and hands its slot over at once; a
   * queue worker takes no new task, waits for the handlers running (each until it settles or its
   * signal aborted at the task's deadline) and hands back what it still holds. Idempotent.
   */
  leave(): Promise<void> {
    this.#leaving ??= this.leaveOnce();
    return this.#leaving;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.leave();
  }

  /** What leaving does; runs once. */
  protected abstract leaveOnce(): Promise<void>;
}
