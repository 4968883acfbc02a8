/**
 * Runs a task now, or once more right after the run in flight: never two runs at once, and a
 * request made during a run is never lost (the run after it sees what prompted the request).
 * Requests made during one run share that one extra run.
 */
export class SingleFlight {
  readonly #task: () => Promise<void>;
  readonly #stopped: () => boolean;
  #running = false;
  #again = false;
  #waiting: (() => void)[] = [];

  /** `stopped`: once it returns true, no run starts (one in flight finishes). */
  constructor(task: () => Promise<void>, stopped: () => boolean = () => false) {
    this.#task = task;
    this.#stopped = stopped;
  }

  /** A run is in flight. */
  get running(): boolean {
    return this.#running;
  }

  /**
   * Runs the task now (its synchronous part before this returns), or once more after the run
   * in flight. Settles when the runs in flight are over: with the task's error for the call
   * that started them, always fulfilled for the calls that asked for a run meanwhile.
   */
  run(): Promise<void> {
    if (this.#stopped()) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return new Promise((resolve) => this.#waiting.push(resolve));
    }
    return this.#drain();
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      do {
        this.#again = false;
        await this.#task();
      } while (this.#again && !this.#stopped());
    } finally {
      this.#running = false;
      const waiting = this.#waiting;
      this.#waiting = [];
      for (const resolve of waiting) resolve();
    }
  }
}
