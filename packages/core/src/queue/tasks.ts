import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { CorruptStateError, PermissionError, ScriptError, StaleTaskError } from '../errors.js';
import { describe } from '../failures.js';
import type { Clock } from '../member/clock.js';
import type { WorkerReply } from '../scripts.js';
import type { Delivery } from './inbox.js';
import type { TaskHandler, TaskSettled } from './types.js';

/** What the task runner needs of its worker. */
export interface TaskHost {
  readonly queue: string;
  readonly handler: TaskHandler;
  readonly clock: Clock;
  readonly log: Logger;
  /** Pause between two attempts to complete (ms). */
  readonly retryDelay: number;
  /** Sends the fenced completion once (complete.lua). */
  complete(delivery: Delivery, outcome: 'done' | 'failed'): Promise<WorkerReply>;
  /** Whether a completion that failed may be sent again: the worker's lease holds and it has not left. */
  mayRetry(): boolean;
  settled(settled: TaskSettled): void;
  error(error: Error): void;
}

/** A delivery whose handler runs, keyed by its token (a task may come back to the same worker). */
interface Running {
  delivery: Delivery;
  controller: AbortController;
  /** Local clock: when the queue may deliver the task to another worker. */
  deadline: number;
  timer: NodeJS.Timeout;
  settled: Promise<void>;
}

/** Runs a worker's handlers: one per delivery, aborted at its deadline, completed with its token. */
export class TaskRunner {
  readonly #host: TaskHost;
  readonly #running = new Map<number, Running>();

  constructor(host: TaskHost) {
    this.#host = host;
  }

  get size(): number {
    return this.#running.size;
  }

  /** What the worker claims in a renewal: task id, token and expiry (Redis ms) of each delivery running. */
  claims(): { tokens: Set<number>; held: { id: string; token: number; expires: number }[] } {
    const held = [...this.#running.entries()].map(([token, r]) => ({
      id: r.delivery.id,
      token,
      expires: r.delivery.expires,
    }));
    return { tokens: new Set(this.#running.keys()), held };
  }

  /** Starts the handler; its signal aborts at `deadline` (local clock) at the latest. */
  start(delivery: Delivery, deadline: number): void {
    const running: Running = {
      delivery,
      controller: new AbortController(),
      deadline,
      timer: setTimeout(() => this.#abort(running, 'completeTime passed'), deadline - this.#host.clock.now()),
      settled: Promise.resolve(),
    };
    running.timer.unref();
    this.#running.set(delivery.token, running);
    running.settled = this.#run(running);
  }

  /** Aborts every handler running, or those of the claimed deliveries the queue no longer gives this worker. */
  abort(reason: string, lost?: { tokens: Set<number>; ids: readonly string[] }): void {
    for (const [token, r] of this.#running) {
      if (!lost || (lost.tokens.has(token) && lost.ids.includes(r.delivery.id))) this.#abort(r, reason);
    }
  }

  /** Settles when every handler running now has settled and its completion was sent, or after `limitMs`. */
  async drained(limitMs: number): Promise<void> {
    const running = [...this.#running.values()];
    const latest = Math.max(0, ...running.map((r) => r.deadline - this.#host.clock.now()));
    const timer = new AbortController();
    await Promise.race([
      Promise.allSettled(running.map((r) => r.settled)),
      sleep(latest + limitMs, undefined, { signal: timer.signal }).catch(() => undefined),
    ]);
    timer.abort();
  }

  #abort(running: Running, reason: string): void {
    clearTimeout(running.timer);
    if (running.controller.signal.aborted) return;
    this.#host.log.debug({ task: running.delivery.id, token: running.delivery.token, reason }, 'task aborted');
    running.controller.abort(new Error(`task ${running.delivery.id}: ${reason}`));
  }

  async #run(running: Running): Promise<void> {
    const { delivery, controller } = running;
    const host = this.#host;
    const started = host.clock.now();
    let outcome: 'done' | 'failed' = 'done';
    let value: unknown;
    try {
      value = await host.handler(
        { id: delivery.id, data: delivery.data, deliveries: delivery.deliveries },
        { signal: controller.signal, token: delivery.token },
      );
    } catch (error) {
      outcome = 'failed';
      value = error;
    }
    const durationMs = host.clock.now() - started;
    clearTimeout(running.timer);
    const { reply, uncertain } = await this.#complete(running, outcome);
    this.#running.delete(delivery.token);
    const { id, token, deliveries } = delivery;
    const settled: TaskSettled = { id, token, deliveries, outcome: 'completed', durationMs };
    // A retry refused as stale after an attempt that may have run: that attempt may have been
    // accepted (the task is gone either way), so nobody can say; it is not a StaleTaskError.
    if (!reply || (uncertain && reply.status === 'stale')) {
      settled.outcome = 'unconfirmed';
    } else if (reply.status === 'stale') {
      const error = new StaleTaskError(host.queue, id, token);
      host.log.warn({ task: id, token }, error.message);
      settled.outcome = 'stale';
      settled.error = error;
      host.error(error);
    } else if (outcome === 'failed') {
      settled.outcome = 'failed';
      settled.error = value;
      host.log.warn({ task: id, error: describe(value), status: reply.status }, 'task handler failed');
    } else {
      settled.result = value;
    }
    host.settled(settled);
  }

  /**
   * Sends the fenced completion, again after a failure while the worker's lease holds (the token
   * makes a repeat harmless: the queue accepts it once, or refuses it as stale). No reply when
   * never confirmed: the queue delivers the task again. `uncertain`: an attempt failed in a way
   * that does not say whether Redis ran it (a timeout, a connection lost after sending).
   */
  async #complete(
    running: Running,
    outcome: 'done' | 'failed',
  ): Promise<{ reply: WorkerReply | undefined; uncertain: boolean }> {
    const host = this.#host;
    let uncertain = false;
    for (;;) {
      try {
        return { reply: await host.complete(running.delivery, outcome), uncertain };
      } catch (error) {
        const final =
          error instanceof PermissionError || error instanceof CorruptStateError || error instanceof ScriptError;
        if (final || !host.mayRetry()) {
          const { id, token } = running.delivery;
          host.log.error({ task: id, token, error: describe(error) }, 'could not complete the task');
          host.error(error instanceof Error ? error : new Error(String(error)));
          return { reply: undefined, uncertain };
        }
        uncertain = true;
        await sleep(host.retryDelay);
      }
    }
  }
}
