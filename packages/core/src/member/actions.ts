import { setTimeout as sleep } from 'node:timers/promises';

export type Action = 'prepare' | 'activate' | 'deactivate';

export type Outcome = { ok: true } | { ok: false; timedOut: boolean; error: unknown };

/**
 * Delivers actions one at a time, in order, never concurrently: the next waits for the last
 * handler to settle, or to be abandoned after `timeoutMs`.
 */
export class ActionQueue {
  #tail: Promise<void> = Promise.resolve();
  #pending = 0;

  get idle(): boolean {
    return this.#pending === 0;
  }

  /** Queues a step; resolves when it has run. Steps never reject. */
  enqueue(step: () => Promise<void> | void): Promise<void> {
    this.#pending += 1;
    const run = this.#tail.then(async () => {
      try {
        await step();
      } finally {
        this.#pending -= 1;
      }
    });
    this.#tail = run.catch(() => undefined);
    return this.#tail;
  }

  /** Resolves when everything queued so far has run. */
  drained(): Promise<void> {
    return this.#tail;
  }
}

/** Runs a handler with a time limit; a handler that never settles is abandoned, not awaited. */
export async function runHandler<T>(
  handler: ((info: T) => unknown) | undefined,
  info: T,
  timeoutMs: number,
): Promise<Outcome> {
  if (!handler) return { ok: true };
  const timer = new AbortController();
  try {
    return await Promise.race([
      Promise.resolve()
        .then(() => handler(info))
        .then((): Outcome => ({ ok: true })),
      sleep(timeoutMs, undefined, { signal: timer.signal, ref: false }).then(
        (): Outcome => ({
          ok: false,
          timedOut: true,
          error: new Error(`handler did not settle within ${timeoutMs} ms`),
        }),
      ),
    ]);
  } catch (error) {
    return { ok: false, timedOut: false, error };
  } finally {
    timer.abort();
  }
}
