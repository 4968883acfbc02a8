// A queue worker's wake-up for the next moment to reap (src/queue/lease.ts `ReapWatch`): a reply
// that says when arms it, one that says nothing to reap stops it, and one that did not look (a
// completion's -1) leaves it armed.
import { monotonicClock } from '@understudy/core/testing';
import { describe, expect, it } from 'vitest';
import { ReapWatch } from '../src/queue/lease.js';

/** A watch on the real clock whose Redis clock reads `now()` ms, and the times it fired. */
function watch() {
  const fired: number[] = [];
  const w = new ReapWatch(monotonicClock, () => fired.push(monotonicClock.now()));
  const now = () => monotonicClock.now();
  return { w, fired, now };
}

const until = async (check: () => boolean, ms: number) => {
  const end = performance.now() + ms;
  while (!check() && performance.now() < end) await new Promise((resolve) => setTimeout(resolve, 5));
};

describe('ReapWatch', () => {
  it('fires at the moment a reply names, not before', async () => {
    const { w, fired, now } = watch();
    const sent = now();
    w.arm(sent, 1_000_000, 1_000_040);
    await until(() => fired.length > 0, 2000);
    expect(fired).toHaveLength(1);
    expect((fired[0] ?? 0) - sent).toBeGreaterThanOrEqual(39);
  });

  it('stays armed after a reply that did not look (-1), and stops after one with nothing to reap (0)', async () => {
    const kept = watch();
    kept.w.arm(kept.now(), 1_000_000, 1_000_040);
    kept.w.arm(kept.now(), 1_000_001, -1);
    await until(() => kept.fired.length > 0, 2000);
    expect(kept.fired).toHaveLength(1);

    const stopped = watch();
    stopped.w.arm(stopped.now(), 1_000_000, 1_000_040);
    stopped.w.arm(stopped.now(), 1_000_001, 0);
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(stopped.fired).toHaveLength(0);
  });
});
