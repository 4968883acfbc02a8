import { describe, expect, it } from 'vitest';
import type { Call } from '../src/member/calls.js';
import { LeaseKeeper } from '../src/member/lease.js';
import { leaseHost, standbyView } from './helpers.js';

// The lease keeper's renewals in flight, with a host whose replies the test hands out: one at a
// time for a heartbeat, and a quorum proposal (`renewNow`) beside the heartbeat in flight.

const H = 1000;
const A = 10_000;

/** The keeper's settings, on a clock the test moves. */
const settings = (now: () => number) => ({
  heartbeatInterval: H,
  activationInterval: A,
  preparationInterval: 0,
  clockDrift: 0.01,
  clock: { now },
});

const view = (serverNow: number) => standbyView({ activationInterval: A, heartbeatInterval: H, serverNow, weight: 1 });

/** A keeper whose host records each renewal sent; `reply(i)` answers the i-th. */
function keeperWithHost() {
  let now = 1000;
  const sent: { sentAt: number; answer: (call: Call) => void }[] = [];
  const renewed: number[] = [];
  const keeper = new LeaseKeeper(
    settings(() => now),
    leaseHost(
      () => {
        const sentAt = now;
        return new Promise<Call>((answer) => sent.push({ sentAt, answer }));
      },
      { renewed: (call) => renewed.push(call.sentAt) },
    ),
  );
  const reply = (i: number) => {
    const s = sent[i];
    if (!s) throw new Error(`no renewal ${i} was sent`);
    s.answer({ view: view(s.sentAt), sentAt: s.sentAt, midpoint: s.sentAt + 1 });
  };
  const tick = (ms: number) => {
    now += ms;
  };
  return { keeper, sent, renewed, reply, tick };
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

describe('the lease keeper', () => {
  it('sends a heartbeat asked for during one in flight only after that one’s reply', async () => {
    const { keeper, sent, reply, tick } = keeperWithHost();
    const first = keeper.renew();
    tick(10);
    const second = keeper.renew();
    await settle();
    expect(sent).toHaveLength(1);
    reply(0);
    await settle();
    expect(sent).toHaveLength(2);
    reply(1);
    await Promise.all([first, second]);
    keeper.stop();
  });

  it('sends renewNow at once, beside the heartbeat in flight, and takes both replies in order', async () => {
    const { keeper, sent, renewed, reply, tick } = keeperWithHost();
    const heartbeat = keeper.renew();
    tick(10);
    const proposal = keeper.renewNow();
    await settle();
    expect(sent.map((s) => s.sentAt)).toEqual([1000, 1010]);
    reply(0);
    reply(1);
    await Promise.all([heartbeat, proposal]);
    expect(renewed).toEqual([1000, 1010]);
    // The later t0 sets the deadline (S4: A·(1−ρ) − δ from when it was sent).
    expect(keeper.deadline).toBeCloseTo(1010 + A * 0.99 - keeper.margin(), 6);
    keeper.stop();
  });

  it('renewNow with nothing in flight is a heartbeat: one renewal', async () => {
    const { keeper, sent, reply } = keeperWithHost();
    const proposal = keeper.renewNow();
    await settle();
    expect(sent).toHaveLength(1);
    reply(0);
    await proposal;
    keeper.stop();
  });

  it('deactivates at a failed renewal once its clock passed the deadline, before the deadline timer runs', async () => {
    let now = 1000;
    let lapsed = 0;
    const keeper = new LeaseKeeper(
      settings(() => now),
      leaseHost(() => Promise.reject(new Error('cut off')), { lapsed: () => lapsed++ }),
    );
    keeper.joined({ view: view(now), sentAt: now, midpoint: now + 1 });
    keeper.arm();
    // The clock steps past the deadline; the timer, on real time, is still about A away.
    now += A;
    await keeper.renew();
    expect(lapsed).toBe(1);
    keeper.stop();
  });
});
