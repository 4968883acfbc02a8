import {
  describeGroup,
  joinGroup,
  type Member,
  monitorGroup,
  ParamMismatchError,
  type QuorumTransition,
  RedisUnavailableError,
  readHistory,
  setActiveGoal,
} from '@understudy/core';
import { type RedisQuorum, startRedisQuorum, uniqueGroup, waitFor } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST } from './helpers.js';

// The operator's side of quorum mode (DESIGN §9) against three real servers: describe, goal
// changes and history over K, and the refusal of a member of the other mode.

let quorum: RedisQuorum;
beforeAll(async () => {
  quorum = await startRedisQuorum({ count: 3 });
});
afterAll(async () => {
  await quorum.stop();
});

const members: Member[] = [];
afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
});

async function join(redis: string | string[], group: string, memberId: string, weight = 10): Promise<Member> {
  const member = await joinGroup({ ...FAST, redis, group, memberId, weight });
  members.push(member);
  return member;
}

describe('mode mismatch', () => {
  it('a quorum member is refused by a group with single-server members, naming the mode', async () => {
    const group = uniqueGroup('mode-q');
    await join(quorum.urls[0] as string, group, 'single');
    const error = await join(quorum.urls, group, 'quorum').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParamMismatchError);
    expect(error).toMatchObject({ field: 'quorum', requested: 1, current: 0 });
    expect((error as Error).message).toMatch(/single-server mode.*quorum mode/);
  });

  it('a single-server member is refused by a quorum group, naming the mode', async () => {
    const group = uniqueGroup('mode-s');
    await join(quorum.urls, group, 'quorum');
    const error = await join(quorum.urls[1] as string, group, 'single').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ParamMismatchError);
    expect(error).toMatchObject({ field: 'quorum', requested: 0, current: 1 });
    expect((error as Error).message).toMatch(/quorum mode.*--redis given K times/);
  });

  it('a group that emptied takes the mode of the member that forms it again', async () => {
    const group = uniqueGroup('mode-empty');
    const q = await join(quorum.urls, group, 'quorum');
    await q.leave();
    // A leave that timed out on this server (a loaded machine, FAST's 40 ms command timeout)
    // empties the group there only when the lease lapses, within A.
    await waitFor(
      async () => (await describeGroup({ redis: quorum.urls[0] as string, group })).members.length === 0,
      'the group empty on server 0',
      5000,
      20,
    );
    const single = await join(quorum.urls[0] as string, group, 'single');
    // Granted by ranking again: the quorum flag went with the quorum members.
    await waitFor(() => single.isActive(), 'the single-server member active');
  });
});

describe('the quorum monitor’s transitions', () => {
  it('emits each transition once, when a majority of the servers logged it, with those servers', async () => {
    const group = uniqueGroup('transitions');
    // The group exists before the monitor starts (a monitor of a group nobody joined is fine too).
    const first = await join(quorum.urls, group, 'first', 5);
    await waitFor(() => first.isActive(), 'first active');
    const monitor = await monitorGroup({ redis: quorum.urls, group });
    const seen: QuorumTransition[] = [];
    monitor.on('transition', (t) => seen.push(t as QuorumTransition));
    try {
      const heavy = await join(quorum.urls, group, 'heavy', 50);
      await waitFor(() => heavy.isActive(), 'heavy active after preempting first');
      await setActiveGoal({ redis: quorum.urls, group, activeGoal: 2 });
      await waitFor(
        () => seen.some((t) => t.type === 'goal' && t.reason === 'operator'),
        () => `the goal change; seen: ${JSON.stringify(seen)}`,
      );
      const count = (type: string, member: string) => seen.filter((t) => t.type === type && t.member === member);
      expect(count('join', 'heavy')).toHaveLength(1);
      expect(count('activate', 'heavy')).toHaveLength(1);
      expect(count('deactivate', 'first')).toHaveLength(1);
      expect(seen.filter((t) => t.type === 'goal' && t.reason === 'operator')).toHaveLength(1);
      for (const t of seen) expect(t.servers.length).toBeGreaterThanOrEqual(2);
    } finally {
      await monitor.close();
    }
  });
});

describe('operator calls over three servers', () => {
  it('describe, set the goal and read the history over K; per-server reachability; Q needed', async () => {
    const group = uniqueGroup('admin');
    const a = await join(quorum.urls, group, 'a', 20);
    await join(quorum.urls, group, 'b', 10);
    await waitFor(() => a.isActive(), 'a active');

    let d = await describeGroup({ redis: quorum.urls, group });
    expect(d.quorum).toBe(2);
    expect(d.activeGoal).toBe(1);
    expect(d.members.map((m) => [m.id, m.state])).toEqual([
      ['a', 'active'],
      ['b', 'standby'],
    ]);
    expect(d.servers.map((s) => [s.index, s.reachable, s.activeGoal])).toEqual([
      [0, true, 1],
      [1, true, 1],
      [2, true, 1],
    ]);

    const change = await setActiveGoal({ redis: quorum.urls, group, activeGoal: 2 });
    expect(change).toMatchObject({ previous: 1, quorum: 2, accepted: 3 });
    expect(change.servers.every((s) => s.reachable && s.previous === 1)).toBe(true);
    await waitFor(
      async () => (await describeGroup({ redis: quorum.urls, group })).activeCount === 2,
      'two active on a majority',
    );

    const history = await readHistory({ redis: quorum.urls, group, count: 100 });
    const operator = history.filter((t) => t.type === 'goal' && t.reason === 'operator');
    // Each server logged the change: one transition, three servers.
    expect(operator).toHaveLength(1);
    expect(operator[0]?.servers.sort()).toEqual([0, 1, 2]);
    const activations = history.filter((t) => t.type === 'activate' && t.member === 'a');
    expect(activations).toHaveLength(1);
    expect(activations[0]?.servers.length).toBeGreaterThanOrEqual(2);
    const times = history.map((t) => t.time);
    expect(times).toEqual([...times].sort((x, y) => x - y));

    // One server lost: a majority still answers; the lost one is reported unreachable.
    await quorum.kill(2);
    d = await describeGroup({ redis: quorum.urls, group, timeout: 1000 });
    expect(d.activeCount).toBe(2);
    expect(d.servers.map((s) => s.reachable)).toEqual([true, true, false]);
    expect(d.servers[2]?.error).toBeTruthy();
    const back = await setActiveGoal({ redis: quorum.urls, group, activeGoal: 1, timeout: 1000 });
    expect(back).toMatchObject({ previous: 2, accepted: 2 });
    expect(back.servers[2]).toMatchObject({ reachable: false });

    // Two lost: no majority; every call says so.
    await quorum.kill(1);
    await expect(describeGroup({ redis: quorum.urls, group, timeout: 1000 })).rejects.toBeInstanceOf(
      RedisUnavailableError,
    );
    await expect(setActiveGoal({ redis: quorum.urls, group, activeGoal: 2, timeout: 1000 })).rejects.toThrow(
      /1 of 3 servers accepted, a quorum is 2/,
    );
    await expect(readHistory({ redis: quorum.urls, group, timeout: 1000 })).rejects.toBeInstanceOf(
      RedisUnavailableError,
    );
  });
});
