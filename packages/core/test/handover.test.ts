import { type Member, setActiveGoal } from '@understudy/core';
import { plainRedis, type RedisServer } from '@understudy/testkit';
import { beforeAll, describe, expect, it } from 'vitest';
import { FAST, hrNow, memberFactory, Timeline, uniqueGroup, waitFor } from './helpers.js';

let server: RedisServer;
beforeAll(async () => {
  // Only commands, no faults: the server at REDIS_URL will do, if one is given.
  server = await plainRedis();
});
const join = memberFactory(() => server);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Joins members whose handlers record when they start and settle on one clock. */
function recorded(timeline: Timeline, deactivateMs = 0) {
  return async (group: string, memberId: string, weight: number, extra: Parameters<typeof join>[0] | object = {}) => {
    const member = await join({
      group,
      memberId,
      weight,
      onDeactivate: async (info) => {
        await sleep(deactivateMs);
        timeline.record({ member: memberId, event: 'deactivated', epoch: info.epoch, reason: info.reason });
      },
      ...extra,
    });
    timeline.watch(member);
    return member;
  };
}

const activeOf = (members: Member[]) => members.filter((m) => m.isActive()).map((m) => m.id);

describe('graceful handover', () => {
  it('activates the next member at once when the active one leaves, without waiting for a lease', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    // Long intervals: a handover that waited for a lease or a heartbeat would show.
    const slow = { heartbeatInterval: 1000, activationInterval: 3000 };
    const add = recorded(timeline);
    const first = await add(group, 'first', 20, slow);
    const second = await add(group, 'second', 10, slow);
    await waitFor(() => first.isActive(), 'first active', 6000);
    const leftAt = hrNow();
    await first.leave();
    await waitFor(() => second.isActive(), 'second active');
    const activation = timeline.of('second', 'activate')[0];
    expect(activation?.reason).toBe('handover');
    const handoverMs = (activation?.t ?? Number.POSITIVE_INFINITY) - leftAt;
    expect(handoverMs).toBeLessThan(slow.heartbeatInterval / 4);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('preemption', () => {
  it('deactivates the outranked active and waits for its handler before activating the newcomer', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    const add = recorded(timeline, 150);
    const incumbent = await add(group, 'incumbent', 10);
    await waitFor(() => incumbent.isActive(), 'incumbent active');
    const challenger = await add(group, 'challenger', 20);
    await waitFor(() => challenger.isActive(), 'challenger active');

    const demoted = timeline.of('incumbent', 'deactivated')[0];
    const promoted = timeline.of('challenger', 'activate')[0];
    expect(demoted?.reason).toBe('preempted');
    expect(promoted?.reason).toBe('handover');
    expect(promoted?.t).toBeGreaterThan(demoted?.t ?? Number.POSITIVE_INFINITY);
    expect(promoted?.epoch).toBeGreaterThan(demoted?.epoch ?? Number.POSITIVE_INFINITY);
    expect(incumbent.state).toBe('standby');
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('preempts when setWeight lifts a standby above the active, and when it lowers the active below a standby', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    const add = recorded(timeline, 20);
    const a = await add(group, 'a', 20);
    const b = await add(group, 'b', 10);
    await waitFor(() => a.isActive(), 'a active');
    await b.setWeight(30);
    await waitFor(() => b.isActive() && !a.isActive(), 'b active after its weight rose');
    await b.setWeight(5);
    await waitFor(() => a.isActive() && !b.isActive(), 'a active after b’s weight fell');
    expect(timeline.of('a', 'deactivated').map((e) => e.reason)).toEqual(['preempted']);
    expect(timeline.of('b', 'deactivated').map((e) => e.reason)).toEqual(['preempted']);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('never preempts between equal weights', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    const add = recorded(timeline);
    const incumbent = await add(group, 'incumbent', 10);
    await waitFor(() => incumbent.isActive(), 'incumbent active');
    const peer = await add(group, 'peer', 10);
    await sleep(FAST.activationInterval * 2);
    expect(activeOf([incumbent, peer])).toEqual(['incumbent']);
    expect(timeline.of('incumbent', 'deactivate')).toEqual([]);
  });

  it('keeps at most N active while preemptions ripple through a group of N = 2', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    const add = recorded(timeline, 30);
    const members = [await add(group, 'w10', 10, { activeGoal: 2 }), await add(group, 'w20', 20, { activeGoal: 2 })];
    await waitFor(() => activeOf(members).length === 2, 'two active');
    members.push(await add(group, 'w30', 30, { activeGoal: 2 }));
    members.push(await add(group, 'w40', 40, { activeGoal: 2 }));
    await waitFor(() => activeOf(members).sort().join() === 'w30,w40', 'w30 and w40 active');
    expect(timeline.maxConcurrentActive()).toBeLessThanOrEqual(2);
    const epochs = timeline.entries.filter((e) => e.event === 'activate').map((e) => e.epoch ?? 0);
    expect(new Set(epochs).size).toBe(epochs.length);
  });
});

describe('the operator changes the goal', () => {
  it('activates the next ranked member when the goal rises, and demotes the lowest ranked when it falls', async () => {
    const group = uniqueGroup();
    const timeline = new Timeline();
    const add = recorded(timeline);
    const members = [await add(group, 'high', 30), await add(group, 'mid', 20), await add(group, 'low', 10)];
    await waitFor(() => activeOf(members).join() === 'high', 'high active');

    const raised = await setActiveGoal({ redis: server.url, group, activeGoal: 2 });
    expect(raised.previous).toBe(1);
    await waitFor(() => activeOf(members).sort().join() === 'high,mid', 'high and mid active');
    expect(timeline.of('mid', 'activate')[0]?.reason).toBe('goal-raised');

    await setActiveGoal({ redis: server.url, group, activeGoal: 1 });
    await waitFor(() => activeOf(members).join() === 'high', 'only high active');
    expect(timeline.of('mid', 'deactivate')[0]?.reason).toBe('goal-lowered');
    await sleep(FAST.heartbeatInterval * 4);
    expect(activeOf(members)).toEqual(['high']);
  });

  it('refuses a member that asks for another goal than the group runs with', async () => {
    const group = uniqueGroup();
    await join({ group, memberId: 'first', weight: 10 });
    await setActiveGoal({ redis: server.url, group, activeGoal: 2 });
    await expect(join({ group, memberId: 'stale', weight: 10, activeGoal: 1 })).rejects.toMatchObject({
      code: 'PARAM_MISMATCH',
      field: 'activeGoal',
      requested: 1,
      current: 2,
    });
  });
});
