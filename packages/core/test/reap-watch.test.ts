// A queue worker's wake-up for the next moment to reap (src/queue/lease.ts `ReapWatch`): a reply
// that says when arms it (the moment mapped with the fraction of a ms the reply gives Redis's
// time), one that says nothing to reap stops it, and one that did not look (a completion's -1)
// leaves it armed.
import { monotonicClock } from '@understudy/core/testing';
import { describe, expect, it, vi } from 'vitest';
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

  it("maps the moment with the fraction of a ms the reply gives Redis's time: a whole ms sooner than from the ms alone", async () => {
    // A clock the test moves: Redis read 1,000,000.9 at local 0 (the round trip took no time).
    let local = 0;
    const clock = { now: () => local };
    const fired: number[] = [];
    const random = vi.spyOn(Math, 'random').mockReturnValue(0);
    try {
      const w = new ReapWatch(clock, () => fired.push(local));
      w.arm(0, 1_000_000.9, 1_000_040);
      local = 39.05;
      await new Promise((resolve) => setTimeout(resolve, 60));
      expect(fired).toHaveLength(0);
      local = 39.15;
      await until(() => fired.length > 0, 2000);
      expect(fired).toEqual([39.15]);
    } finally {
      random.mockRestore();
    }
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
