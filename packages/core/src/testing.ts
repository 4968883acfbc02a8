/**
 * `@understudy/core/testing`: aids for tests of understudy and of the applications that use it.
 * The group's Redis keys (to inspect or damage its state) and clocks that run fast or slow.
 */
export { DEFAULT_PREFIX, type GroupKeys, groupKeys } from './keys.js';
export { driftingClock, monotonicClock } from './member/clock.js';
