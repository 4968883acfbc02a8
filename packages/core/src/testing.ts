/**
 * `@understudy/core/testing`: aids for tests of understudy and of the applications that use it.
 * The group's Redis keys (to inspect or damage its state) and clocks that run fast or slow, or
 * step forward.
 */
export { DEFAULT_PREFIX, type GroupKeys, groupKeys } from './keys.js';
export { driftingClock, jumpingClock, monotonicClock } from './member/clock.js';
