import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { runTypeScript, waitFor } from '@understudy/testkit';
import { describe, expect, it } from 'vitest';
import type { Call } from '../src/member/calls.js';
import { type Clock, driftingClock } from '../src/member/clock.js';
import { LeaseKeeper } from '../src/member/lease.js';
import { wakeAt } from '../src/wake-at.js';
import { leaseHost, standbyView } from './helpers.js';

// A timer whose task asks Redis something it answers by its own clock (a takeover, a lapsed
// lease) must not run before the instant it was armed for: Node's timers fire up to about a
// millisecond early, and an early renewal is only told "not yet" — a round trip and another
// timer later. A clock running at half speed makes every timer "early" by half its delay, so
// these tests fail for any wake-up that trusts the timer alone, whatever the machine's load.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('wakeAt', () => {
  it('waits out the last millisecond in a process whose event loop nothing else wakes', () => {
    // Were its steps unref'd immediates, the loop would block in its poll until the interval
    // (a second) and every task would run about a second late.
    const child = spawnSync(
      process.execPath,
      [...runTypeScript(), join(import.meta.dirname, 'fixtures/wake-at-alone.ts')],
      {
        encoding: 'utf8',
        timeout: 20_000,
      },
    );
    expect(child.status, child.stderr).toBe(0);
    const late = JSON.parse(child.stdout) as number[];
    expect(late).toHaveLength(5);
    for (const ms of late) expect(ms).toBeLessThan(300);
  });

  it('runs its task once, never before the clock reached the instant, though timers fire early', async () => {
    const clock = driftingClock(0.5);
    const at = clock.now() + 20;
    const ran: number[] = [];
    wakeAt(clock, at, () => ran.push(clock.now()));
    await waitFor(() => ran.length > 0, 'the task to run');
    await sleep(20);
    expect(ran).toHaveLength(1);
    expect(ran[0]).toBeGreaterThanOrEqual(at);
  });

  it('never runs a cancelled task, and never runs one synchronously', async () => {
    const clock = driftingClock(1);
    let cancelledRan = false;
    wakeAt(clock, clock.now() + 5, () => {
      cancelledRan = true;
    })();
    let pastRan = false;
    wakeAt(clock, clock.now() - 1, () => {
      pastRan = true;
    });
    expect(pastRan).toBe(false);
    await sleep(20);
    expect(pastRan).toBe(true);
    expect(cancelledRan).toBe(false);
  });
});

const VIEW = standbyView();

/** A lease keeper whose renewals are recorded (local send time) and answered at once with `view`. */
function keeper(clock: Clock, preparationInterval: number) {
  const sent: number[] = [];
  const host = leaseHost(async (): Promise<Call> => {
    const now = clock.now();
    sent.push(now);
    return { view: { ...VIEW, serverNow: VIEW.serverNow + 1 }, sentAt: now, midpoint: now };
  });
  const settings = {
    heartbeatInterval: 60_000,
    activationInterval: 1000,
    preparationInterval,
    clockDrift: 0.01,
    clock,
  };
  return { lease: new LeaseKeeper(settings, host), sent };
}

describe('the next in line’s takeover and prepare timers', () => {
  it('send the takeover renewal once, not before the holder’s deadline as the reply placed it', async () => {
    const clock = driftingClock(0.5);
    const { lease, sent } = keeper(clock, 0);
    const midpoint = clock.now();
    // The holder's lease ends 20 ms after the reply's Redis time: 20 ms after the midpoint, locally.
    lease.watch({ ...VIEW, watchDeadline: VIEW.serverNow + 20 }, midpoint, true);
    await waitFor(() => sent.length > 0, 'the takeover renewal');
    await sleep(20);
    lease.stop();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeGreaterThanOrEqual(midpoint + 20);
  });

  it('send the prepare renewal not before the holder’s lease turns older than P', async () => {
    const clock = driftingClock(0.5);
    const { lease, sent } = keeper(clock, 10);
    const midpoint = clock.now();
    // Deadline 1000 ms away, A = 1000: the holder renewed now, and its lease turns older than P = 10 ms 10 ms from now.
    lease.watch({ ...VIEW, watchDeadline: VIEW.serverNow + 1000 }, midpoint, true);
    await waitFor(() => sent.length > 0, 'the prepare renewal');
    await sleep(20);
    lease.stop();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toBeGreaterThanOrEqual(midpoint + 10);
  });

  it('cancel both when the member stops watching', async () => {
    const clock = driftingClock(1);
    const { lease, sent } = keeper(clock, 10);
    lease.watch({ ...VIEW, watchDeadline: VIEW.serverNow + 1000 }, clock.now(), true);
    lease.unwatch();
    await sleep(30);
    expect(sent).toEqual([]);
  });
});
