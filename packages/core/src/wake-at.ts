/** A monotonic clock in milliseconds (the member's `Clock`, `performance` for the monitor). */
interface Now {
  now(): number;
}

/** Below this much time left, the wait goes on in `setImmediate` steps rather than a timer. */
const SPIN_MS = 1;
/** Node's longest timer; a longer wait takes several. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `task` once `clock.now()` has reached `at`, never before it; returns a function that
 * cancels it. For timers whose task asks Redis something it answers by its own clock (a
 * takeover, a lapsed lease): Node's timers count whole milliseconds and fire up to about a
 * millisecond before the delay they were given has passed, and a task that runs early is told
 * "not yet" and costs a round trip and another timer. So a timer runs until less than
 * `SPIN_MS` is left, and the rest is waited out in `setImmediate` steps, which let I/O run.
 * The timer does not keep the process alive (unref); the steps do, for that last millisecond:
 * with only unref'd immediates pending, the event loop blocks in its poll until some other timer
 * or I/O wakes it, and the task would run that late. The task never runs synchronously.
 */
export function wakeAt(clock: Now, at: number, task: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  let over = false;
  /** Real time (performance.now) the steps may run until, once: a clock that lags real time (a test's) gets timers again. */
  let spinUntil = Number.POSITIVE_INFINITY;
  const wait = () => {
    const left = at - clock.now();
    if (left <= 0) {
      over = true;
      task();
      return;
    }
    const real = performance.now();
    if (left > SPIN_MS || real > spinUntil) {
      timer = setTimeout(step, Math.min(left, MAX_TIMER_MS)).unref();
      return;
    }
    if (spinUntil === Number.POSITIVE_INFINITY) spinUntil = real + 2 * SPIN_MS;
    immediate = setImmediate(step);
  };
  const step = () => {
    timer = undefined;
    immediate = undefined;
    if (!over) wait();
  };
  // Never synchronously: the caller finishes what it is doing first.
  const left = at - clock.now();
  if (left > SPIN_MS) timer = setTimeout(step, Math.min(left, MAX_TIMER_MS)).unref();
  else immediate = setImmediate(step);
  return () => {
    over = true;
    clearTimeout(timer);
    if (immediate) clearImmediate(immediate);
  };
}
