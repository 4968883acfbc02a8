import type { Member } from '@understudy/core';
import { plainRedis, type RedisServer } from '@understudy/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAST, memberFactory, Timeline, uniqueGroup, waitFor } from './helpers.js';

let server: RedisServer;
beforeAll(async () => {
  // Only commands, no faults: the server at REDIS_URL will do, if one is given.
  server = await plainRedis();
});
const join = memberFactory(() => server);

const activeIds = (members: Member[]) =>
  members
    .filter((m) => m.isActive())
    .map((m) => m.id)
    .sort();

/** Waits until exactly `ids` are active, then checks that it stays so for a few heartbeats. */
async function expectActive(members: Member[], ids: string[], settleMs = FAST.heartbeatInterval * 4) {
  await waitFor(() => JSON.stringify(activeIds(members)) === JSON.stringify([...ids].sort()), `${ids} active`);
  await new Promise((resolve) => setTimeout(resolve, settleMs));
  expect(activeIds(members)).toEqual([...ids].sort());
}

describe('ranking', () => {
  it('activates the member with the highest weight', async () => {
    const group = uniqueGroup();
    const members = [
      await join({ group, memberId: 'w10', weight: 10 }),
      await join({ group, memberId: 'w30', weight: 30 }),
      await join({ group, memberId: 'w20', weight: 20 }),
    ];
    await expectActive(members, ['w30']);
    expect(members.map((m) => m.state)).toEqual(['standby', 'active', 'standby']);
  });

  it('breaks a tie between equal weights by join order', async () => {
    const group = uniqueGroup();
    const members = [
      await join({ group, memberId: 'first', weight: 10 }),
      await join({ group, memberId: 'second', weight: 10 }),
      await join({ group, memberId: 'third', weight: 10 }),
    ];
    await expectActive(members, ['first']);
  });

  it('keeps an active member ahead of an earlier joiner of equal weight (no failback)', async () => {
    const group = uniqueGroup();
    const early = await join({ group, memberId: 'early', weight: 10 });
    await expectActive([early], ['early']);
    const late = await join({ group, memberId: 'late', weight: 20 });
    await expectActive([early, late], ['late']);
    await late.setWeight(10);
    await expectActive([early, late], ['late']);
  });

  it('activates every member when the goal is larger than the membership', async () => {
    const group = uniqueGroup();
    const members = [
      await join({ group, memberId: 'a', weight: 10, activeGoal: 3 }),
      await join({ group, memberId: 'b', weight: 20, activeGoal: 3 }),
    ];
    await expectActive(members, ['a', 'b']);
  });

  for (const goal of [1, 2, 3]) {
    it(`keeps the top ${goal} of four members active with a goal of ${goal}`, async () => {
      const group = uniqueGroup();
      const members: Member[] = [];
      for (const weight of [10, 40, 20, 30]) {
        members.push(await join({ group, memberId: `w${weight}`, weight, activeGoal: goal }));
      }
      const top = ['w40', 'w30', 'w20', 'w10'].slice(0, goal);
      await expectActive(members, top);
      const epochs = members.filter((m) => m.isActive()).map((m) => m.epoch);
      expect(new Set(epochs).size).toBe(goal);
    });
  }

  it('activates a member with weight 0 only when no member with a positive weight is live', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    let failures = 1;
    const flaky = await join({
      group,
      memberId: 'flaky',
      weight: 50,
      onActivate: () => {
        if (failures-- > 0) throw new Error('cannot open the port');
      },
    });
    timeline.watch(flaky);
    const advisories: string[] = [];
    flaky.on('advisory', (a) => advisories.push(a.code));
    const steady = await join({ group, memberId: 'steady', weight: 10 });
    timeline.watch(steady);

    // The flaky member ranks first, fails to activate, drops to weight 0; the next takes over.
    await expectActive([flaky, steady], ['steady']);
    expect(flaky.weight).toBe(0);
    expect(advisories).toContain('DISABLED');
    expect(timeline.of('flaky', 'deactivate').map((e) => e.reason)).toEqual(['disabled']);

    // Last resort: with nobody of positive weight left, the disabled member is activated.
    await steady.leave();
    await expectActive([flaky], ['flaky']);

    // A member of any positive weight preempts it again.
    const newcomer = await join({ group, memberId: 'newcomer', weight: 1 });
    await expectActive([flaky, newcomer], ['newcomer']);
    expect(timeline.of('flaky', 'deactivate').at(-1)?.reason).toBe('preempted');
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('advisories about the group', () => {
  it('warns TOO_FEW_ACTIVE when a disabled member keeps the group below its goal for longer than A', async () => {
    const group = uniqueGroup();
    const healthy = await join({ group, memberId: 'healthy', weight: 10, activeGoal: 2 });
    const advisories: { code: string; at: number }[] = [];
    healthy.on('advisory', (a) => advisories.push({ code: a.code, at: performance.now() }));
    const broken = await join({
      group,
      memberId: 'broken',
      weight: 20,
      activeGoal: 2,
      onActivate: () => {
        throw new Error('no disk');
      },
    });
    await waitFor(() => broken.weight === 0 && healthy.isActive(), 'broken disabled, healthy active');
    const degradedAt = performance.now();
    const warning = await waitFor(
      () => advisories.find((a) => a.code === 'TOO_FEW_ACTIVE'),
      'TOO_FEW_ACTIVE',
      FAST.activationInterval * 4,
    );
    expect(warning.at - degradedAt).toBeGreaterThanOrEqual(FAST.activationInterval - FAST.heartbeatInterval * 2);
    expect(advisories.filter((a) => a.code === 'TOO_FEW_ACTIVE')).toHaveLength(1);
  });
});
