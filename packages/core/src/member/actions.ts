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

/**
 * Runs a handler with a time limit; a handler that never settles is abandoned, not awaited. A
 * plain timer rather than `timers/promises` with an AbortSignal: those cost about a
 * millisecond the first time a process uses them, which was the first activation's handler.
 */
export async function runHandler<T>(
  handler: ((info: T) => unknown) | undefined,
  info: T,
  timeoutMs: number,
): Promise<Outcome> {
  if (!handler) return { ok: true };
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<Outcome>((resolve) => {
    timer = setTimeout(
      () => resolve({ ok: false, timedOut: true, error: new Error(`handler did not settle within ${timeoutMs} ms`) }),
      timeoutMs,
    ).unref();
  });
  try {
    return await Promise.race([
      Promise.resolve()
        .then(() => handler(info))
        .then((): Outcome => ({ ok: true })),
      timedOut,
    ]);
  } catch (error) {
    return { ok: false, timedOut: false, error };
  } finally {
    clearTimeout(timer);
  }
}
