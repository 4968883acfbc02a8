import { joinGroup, type Member } from '@understudy/core';
import { jumpingClock } from '@understudy/core/testing';
import { plainRedis, type RedisServer, tappedRedis } from '@understudy/testkit';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST, lateReplyProbe, uniqueGroup, waitFor } from './helpers.js';

// S4 at the instants where timers cannot help: a member's clock is made to jump past its lease
// deadline between two of its own steps, so only the checks S4 asks for can notice.

let server: RedisServer;
beforeAll(async () => {
  server = await plainRedis();
});
const members: Member[] = [];
afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
});

describe('the lease deadline (S4)', () => {
  it('makes isActive() false the moment it passes, before the member’s own deadline timer ran', async () => {
    const clock = jumpingClock();
    const member = await joinGroup({ redis: server.url, group: uniqueGroup('s4'), weight: 1, ...FAST, clock });
    members.push(member);
    await waitFor(() => member.isActive(), 'the member to activate', 5000);

    clock.jump(FAST.activationInterval);
    // Synchronously after the jump: no timer, no reply has run, the state is still 'active'.
    expect(member.state).toBe('active');
    expect(member.isActive()).toBe(false);
  });

  it('is not extended by a renewal reply that arrives after it passed: the member deactivates first', async () => {
    // The jump happens as a renewal request leaves, after the member took its t0: by the time
    // the reply arrives, the lease that renewal would extend has run out on the member's clock.
    const probe = lateReplyProbe();
    const redis = tappedRedis(server.url, { onSend: probe.onSend });
    const member = await joinGroup({ redis, group: uniqueGroup('s4'), weight: 1, ...FAST, clock: probe.clock });
    members.push(member);
    probe.watch(member);
    await waitFor(() => member.isActive(), 'the member to activate', 5000);
    probe.arm();

    await waitFor(() => probe.seen.length > 0, 'the reply to the renewal sent at the jump', 5000);
    expect(probe.seen[0]).toBe('deactivate lease-lost');
    redis.disconnect();
  });

  it('runs from t0, taken before the request left: time spent waiting for the reply adds nothing to it', async () => {
    const clock = jumpingClock();
    const intervals = { heartbeatInterval: 200, activationInterval: 3000 };
    let armed = false;
    // Every renewal request, once it has left, costs 300 ms on the member's clock before its
    // reply is handled (a slow round trip, well inside the lease).
    const redis = tappedRedis(server.url, {
      onSend: () => {
        if (armed) clock.jump(300);
      },
    });
    const member = await joinGroup({ redis, group: uniqueGroup('s4'), weight: 1, ...intervals, clock });
    members.push(member);
    const renewals: { sentAt: number; leaseDeadline: number }[] = [];
    member.on('renewal', (r) => {
      if (armed && r.outcome === 'ok') renewals.push(r);
    });
    armed = true;
    await waitFor(() => renewals.length >= 3, 'three renewals over the slow round trip', 5000);
    for (const r of renewals) {
      expect(r.leaseDeadline).toBeLessThanOrEqual(r.sentAt + intervals.activationInterval * (1 - 0.01));
    }
    redis.disconnect();
  });
});
