// S6 and its neighbours under lost writes, lost keys and stale words: the findings of an outside
// review (docs/RELIABILITY.md, F13–F20). Each test failed on 54619f0, the main before the fixes.
import { type Advisory, joinGroup, type Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FAST,
  MemberProcess,
  memberFactory,
  restore,
  Switch,
  snapshot,
  Timeline,
  uniqueGroup,
  waitFor,
} from './helpers.js';

const { heartbeatInterval: H, activationInterval: A } = FAST;
const LATE_MS = 1000;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisServer;
let observer: Redis;
beforeAll(async () => {
  server = await startRedis();
  observer = new Redis(server.url, { connectionName: 'test-observer' });
});
afterAll(() => observer.disconnect());
const join = memberFactory(() => server);

/** A group with `a` (20) active and `b` (10) standing by, both watched, with their advisories. */
async function activePair(label: string) {
  const group = uniqueGroup(label);
  const timeline = new Timeline();
  const advisories: Advisory[] = [];
  const a = await join({ group, memberId: 'a', weight: 20 });
  const b = await join({ group, memberId: 'b', weight: 10 });
  for (const member of [a, b]) {
    timeline.watch(member);
    member.on('advisory', (advisory) => advisories.push(advisory));
  }
  await waitFor(() => a.isActive(), 'a active', 3 * A);
  return { group, keys: groupKeys(group), timeline, advisories, a, b };
}

interface LaggingFailover {
  /** What members join through: the master until `failOver`, the promoted server after it. */
  forwarder: Switch;
  /** The old master itself, and a plain client on it. */
  master: RedisServer;
  admin: Redis;
  /** A plain client on the server that will be promoted. */
  promoted: Redis;
  /** Members to leave at the end. */
  members: Member[];
  /** The master dies; the promoted server holds `copy` of the group's keys (an older state). */
  failOver(copy: Map<string, Buffer>): Promise<void>;
}

/** A master, an empty server to promote with an older copy of the group, and clean-up after `body`. */
async function withLaggingFailover(body: (f: LaggingFailover) => Promise<void>): Promise<void> {
  const master = await startRedis();
  const replica = await startRedis();
  const forwarder = await Switch.start(master.port);
  const admin = new Redis(master.url);
  const promoted = new Redis(replica.url);
  const members: Member[] = [];
  const failOver = async (copy: Map<string, Buffer>) => {
    await restore(promoted, copy);
    forwarder.to(replica.port);
    admin.disconnect();
    await master.kill('SIGKILL');
  };
  try {
    await body({ forwarder, master, admin, promoted, members, failOver });
  } finally {
    await Promise.allSettled(members.map((m) => m.leave()));
    admin.disconnect();
    promoted.disconnect();
    await forwarder.close();
    await Promise.all([master.stop(), replica.stop()]);
  }
}

describe('a failover to a server that lost writes (F13)', () => {
  it('never delivers a grant that was given back on the old master: the new server reports it to no one', async () => {
    // DESIGN S6 / issue 13 finding 1, with H = 100, P = 400, A = 1500 ms.
    const intervals = { heartbeatInterval: 100, preparationInterval: 400, activationInterval: 1500 };
    const group = uniqueGroup('lost-write');
    const keys = groupKeys(group);
    const timeline = new Timeline();
    await withLaggingFailover(async ({ forwarder, master, admin, promoted, members, failOver }) => {
      let prepares = 0;
      // X's first prepare is slow: its activation waits behind it.
      const x = await joinGroup({
        ...intervals,
        redis: forwarder.url,
        group,
        memberId: 'x',
        weight: 10,
        onPrepare: () => (prepares++ === 0 ? sleep(1200) : undefined),
      });
      members.push(x);
      // Y reaches only the old master: it goes on believing on its word until its own deadline.
      const y = await joinGroup({ ...intervals, redis: master.url, group, memberId: 'y', weight: 8 });
      members.push(y);
      timeline.watch(x);
      timeline.watch(y);

      // X is granted E1; what the replica will have is the group right after that grant.
      const grant = await waitFor(
        async () => {
          const slot = await admin.hget(keys.slots, '0');
          return slot && (JSON.parse(slot) as { m: string; e: string }).m === 'x' ? JSON.parse(slot) : undefined;
        },
        'x to be granted a slot',
        3 * intervals.activationInterval,
        2,
      );
      const e1 = Number(grant.e);
      const copy = await snapshot(admin, [...keys.scriptKeys]);

      // X's weight drops below Y's before it delivered E1: it gives E1 back, Y gets E2.
      await x.setWeight(5);
      await waitFor(() => y.isActive(), 'y active with E2', 3 * intervals.activationInterval);
      const e2 = y.epoch as number;
      expect(e2).toBeGreaterThan(e1);

      // The master dies; the promoted replica holds the group as it was right after X's grant.
      await failOver(copy);
      await sleep(2.5 * intervals.activationInterval);

      expect(timeline.maxConcurrentActive()).toBe(1);
      expect(timeline.of('x', 'activate').map((e) => e.epoch)).not.toContain(e1);
      expect(await promoted.xrange(keys.log, '-', '+')).toContainEqual([
        expect.any(String),
        expect.arrayContaining(['type', 'quarantine', 'reason', 'server-changed']),
      ]);
    });
  });
});

describe('a weight change lost in a failover (F21)', () => {
  it('is made again by the member’s next renewal, and nobody is preempted on the stale ranking meanwhile', async () => {
    const group = uniqueGroup('lost-weight');
    const keys = groupKeys(group);
    const timeline = new Timeline();
    await withLaggingFailover(async ({ forwarder, admin, promoted, members, failOver }) => {
      const c = await joinGroup({ ...FAST, redis: forwarder.url, group, memberId: 'c', weight: 40 });
      const a = await joinGroup({ ...FAST, redis: forwarder.url, group, memberId: 'a', weight: 20 });
      members.push(c, a);
      timeline.watch(a);
      timeline.watch(c);
      await waitFor(() => c.isActive(), 'c active', 3 * A);
      // The replica has the group as it was before c's weight dropped.
      const copy = await snapshot(admin, [...keys.scriptKeys]);
      await c.setWeight(5);
      await waitFor(() => a.isActive(), 'a active after c stepped back', 3 * A);
      const handedOver = timeline.of('a', 'activate').length;

      await failOver(copy);
      await waitFor(
        async () => JSON.parse((await promoted.hget(keys.members, 'c')) ?? '{}').w === 5,
        'the promoted replica to have c at weight 5 again',
        10 * H,
      );
      await sleep(A + 4 * H);
      expect(timeline.of('a', 'deactivate')).toEqual([]);
      expect(timeline.of('a', 'activate')).toHaveLength(handedOver);
      expect(a.isActive()).toBe(true);
      expect(c.weight).toBe(5);
      expect(timeline.maxConcurrentActive()).toBe(1);
    });
  });
});

describe('a member that comes back (F14, F16)', () => {
  it('is refused with PARAM_MISMATCH when the group formed again with another activation interval', async () => {
    const forwarder = await Switch.start(server.port);
    const group = uniqueGroup('rejoin-params');
    const timeline = new Timeline();
    const advisories: Advisory[] = [];
    const errors: Error[] = [];
    try {
      const x = await join({ redis: forwarder.url, group, memberId: 'x', weight: 20, activationInterval: 1000 });
      x.on('advisory', (a) => advisories.push(a));
      x.on('error', (e) => errors.push(e));
      timeline.watch(x);
      await waitFor(() => x.isActive(), 'x active', 3000);
      // X is cut off (its connections go nowhere) until Redis has dropped it.
      const closed = await startRedis();
      forwarder.to(closed.port);
      await closed.stop();
      await sleep(1000 + 2 * H);
      // The group forgets A = 1000 and forms again with A = 400.
      const z = await join({ group, memberId: 'z', weight: 10 });
      timeline.watch(z);
      await waitFor(() => z.isActive(), 'z active', 3 * A);
      forwarder.to(server.port);
      await waitFor(() => x.state === 'left', 'x to be refused and leave', 2000 + LATE_MS);
      expect(advisories.map((a) => a.code)).toContain('PARAM_MISMATCH');
      expect(errors[0]).toMatchObject({ code: 'PARAM_MISMATCH', field: 'activationInterval', current: 400 });
      expect(z.isActive()).toBe(true);
      expect(timeline.maxConcurrentActive()).toBe(1);
    } finally {
      await forwarder.close();
    }
  });

  it('rejoins with the same id once its crashed predecessor’s lease lapsed, though no other member ran a script', async () => {
    const group = uniqueGroup('fixed-id');
    const crashed = new MemberProcess({ url: server.url, group, memberId: 'fixed', weight: 10 });
    await crashed.waitFor('activate', 3 * A + LATE_MS);
    await crashed.kill('SIGKILL');
    await sleep(A + 2 * H);
    const again = await join({ group, memberId: 'fixed', weight: 10 });
    await waitFor(() => again.isActive(), 'the restarted member active', 3 * A + LATE_MS);
  });
});

describe('announcements that are stale or forged (F15)', () => {
  it('one with a future incarnation does not deafen a standby: it activates when the active leaves', async () => {
    const group = uniqueGroup('forged');
    const timeline = new Timeline();
    const high = await join({ group, memberId: 'high', weight: 20 });
    const low = await join({ group, memberId: 'low', weight: 10 });
    timeline.watch(high);
    timeline.watch(low);
    await waitFor(() => high.isActive(), 'high active', 3 * A);
    const keys = groupKeys(group);
    const created = Number(await observer.hget(keys.config, 'createdAt'));
    await observer.spublish(keys.events, JSON.stringify({ i: String(created + 1e9), v: 0, c: [] }));
    await sleep(3 * H);
    await high.leave();
    await waitFor(() => low.isActive(), 'low active after high left', A + H + 500);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe('an AbortSignal aborted while joinGroup() runs (F17)', () => {
  it.each([0, 1, 3, 10])('aborted after %i ms: the member leaves, and nothing stays in the group', async (delay) => {
    const group = uniqueGroup('abort-join');
    const controller = new AbortController();
    const joining = joinGroup({
      ...FAST,
      redis: server.url,
      group,
      memberId: 'm',
      weight: 10,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), delay);
    const member = await joining.catch((error: unknown) => (error instanceof Error ? error : new Error(String(error))));
    if (member instanceof Error) expect(member.name).toBe('AbortError');
    else await waitFor(() => member.state === 'left', 'the member to leave on abort', 2000);
    await sleep(2 * H);
    expect(await observer.hexists(groupKeys(group).members, 'm')).toBe(0);
  });
});

describe('a group that loses one of its keys (F18)', () => {
  it('DEL of the ranking: rebuilt, and the standby takes over once the active leaves', async () => {
    const { keys, timeline, a, b } = await activePair('lost-rank');
    await observer.del(keys.rank);
    await sleep(2 * H);
    await a.leave();
    // Lost state: one activation interval of quarantine from the moment it was found.
    await waitFor(() => b.isActive(), 'b active', 2 * A + H + 500);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('DEL of the slots: the holder keeps its slot and epoch, and the group is quarantined', async () => {
    const { keys, timeline, a } = await activePair('lost-slots');
    const epoch = a.epoch;
    await observer.del(keys.slots);
    await sleep(A + 4 * H);
    expect(a.isActive()).toBe(true);
    expect(a.epoch).toBe(epoch);
    expect(timeline.of('a', 'deactivate')).toEqual([]);
    expect(timeline.of('b', 'activate')).toEqual([]);
    const slot = JSON.parse((await observer.hget(keys.slots, '0')) ?? '{}') as { m?: string; e?: string };
    expect(slot).toMatchObject({ m: 'a', e: String(epoch) });
    const log = await observer.xrange(keys.log, '-', '+');
    expect(log).toContainEqual([expect.any(String), expect.arrayContaining(['reason', 'lost-state', 'lost', 'slots'])]);
  });

  it('a member that outranks the holder, joined during the quarantine, takes over once it ends (churn seed 2290595580)', async () => {
    const { group, keys, timeline, a } = await activePair('deferred-preemption');
    await observer.del(keys.slots);
    await waitFor(
      async () => Number(await observer.hget(keys.config, 'quarantineUntil')) > Date.now(),
      'the group quarantined',
      4 * H,
    );
    // No preemption during a quarantine (F21): c waits, and nothing changes after it.
    const c = await join({ group, memberId: 'c', weight: 40 });
    timeline.watch(c);
    await sleep(2 * H);
    expect(a.isActive()).toBe(true);
    await waitFor(() => c.isActive(), 'c active after the quarantine', 2 * A + 4 * H);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('lost state found on a server that changed costs one quarantine, not a second at the next grant (F9)', async () => {
    const { keys, timeline, a, b } = await activePair('lost-and-moved');
    // As after a restart that kept an older copy: another server wrote the group last, and a key is gone.
    await observer.hset(keys.config, 'replId', '0'.repeat(40));
    await observer.del(keys.slots);
    await waitFor(
      async () => (await observer.hget(keys.config, 'quarantineUntil')) === '0',
      'the quarantine closed',
      2 * A + 4 * H,
    );
    await a.leave();
    await waitFor(() => b.isActive(), 'b active', 2 * A + 4 * H);
    const log = await observer.xrange(keys.log, '-', '+');
    const field = (fields: string[], name: string) => fields[fields.indexOf(name) + 1];
    const quarantines = log.filter(([, fields]) => field(fields, 'type') === 'quarantine').map(([, f]) => f);
    // Both findings of one script, quarantined from the same moment: one wait of A.
    expect(quarantines.map((f) => field(f, 'reason'))).toEqual(['server-changed', 'lost-state']);
    expect(new Set(quarantines.map((f) => field(f, 'until'))).size).toBe(1);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('DEL of the config, then the active leaves: the group forms again and the standby takes over', async () => {
    const { keys, timeline, advisories, a, b } = await activePair('lost-config');
    await observer.del(keys.config);
    await a.leave();
    await waitFor(() => b.isActive(), 'b active', 2 * A + H + 500);
    expect(advisories.map((x) => x.code)).not.toContain('CORRUPT_STATE');
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('a slot naming a member without a record (slots older than the records): dropped, and the holder reclaims its own', async () => {
    const { keys, timeline, advisories, a } = await activePair('orphan-slot');
    const epoch = a.epoch;
    await observer.hset(keys.slots, '0', '{"m":"phantom","e":"5","t":"0","s":"active","r":"initial"}');
    await sleep(A + 4 * H);
    expect(a.epoch).toBe(epoch);
    expect(timeline.of('a', 'deactivate')).toEqual([]);
    expect(advisories.map((x) => x.code)).not.toContain('CORRUPT_STATE');
    expect(JSON.parse((await observer.hget(keys.slots, '0')) ?? '{}')).toMatchObject({ m: 'a', e: String(epoch) });
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('DEL of the member records: every member stays, the active keeps its epoch', async () => {
    const { keys, timeline, a } = await activePair('lost-members');
    const epoch = a.epoch;
    await observer.del(keys.members);
    await sleep(A + 4 * H);
    expect(a.epoch).toBe(epoch);
    expect(timeline.of('a', 'deactivate')).toEqual([]);
    expect(await observer.hlen(keys.members)).toBe(2);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('raises EVICTION_POLICY on a Redis that may evict any key', async () => {
    const evicting = await startRedis({ config: { maxmemory: '64mb', 'maxmemory-policy': 'allkeys-lru' } });
    try {
      const advisories: Advisory[] = [];
      const member = await join({ redis: evicting.url, group: uniqueGroup('evicting'), memberId: 'm', weight: 10 });
      member.on('advisory', (a) => advisories.push(a));
      await waitFor(() => advisories.find((a) => a.code === 'EVICTION_POLICY'), 'EVICTION_POLICY', 2000);
      expect(advisories.find((a) => a.code === 'EVICTION_POLICY')?.message).toContain('allkeys-lru');
      await member.leave();
    } finally {
      await evicting.stop();
    }
  });
});

describe('smaller findings (F19)', () => {
  it('a member told to release an epoch other than the one it holds gives both up, and the preemptor takes over', async () => {
    const group = uniqueGroup('other-epoch');
    const keys = groupKeys(group);
    const timeline = new Timeline();
    const a = await join({ group, memberId: 'a', weight: 10 });
    timeline.watch(a);
    await waitFor(() => a.isActive(), 'a active', 3 * A);
    const b = await join({ group, memberId: 'b', weight: 5 });
    timeline.watch(b);
    // The group asks a for an epoch it never delivered, while b (now heavier) waits for the slot.
    const slot = JSON.parse((await observer.hget(keys.slots, '0')) ?? '{}') as Record<string, string>;
    await observer.hset(
      keys.slots,
      '0',
      JSON.stringify({ ...slot, e: String(Number(slot.e) + 5), s: 'releasing', r: 'preempted' }),
    );
    await b.setWeight(20);
    await waitFor(() => b.isActive(), 'b active', 3 * A + LATE_MS);
    expect(a.isActive()).toBe(false);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });

  it('a slot only a weight-0 member could fill costs a renewal no reconcile and no config write', async () => {
    const group = uniqueGroup('zero-weight');
    const disabled = await join({
      group,
      memberId: 'z',
      weight: 5,
      activeGoal: 2,
      onActivate: () => {
        throw new Error('cannot keep its resources');
      },
    });
    await waitFor(() => disabled.weight === 0, 'z disabled', 3 * A + LATE_MS);
    const p = await join({ group, memberId: 'p', weight: 10, activeGoal: 2 });
    await waitFor(() => p.isActive(), 'p active', 3 * A);
    await sleep(2 * H);
    const hsets = async () => Number(/cmdstat_hset:calls=(\d+)/.exec(await observer.info('commandstats'))?.[1] ?? 0);
    const before = await hsets();
    await sleep(20 * H);
    // About 40 renewals ran; each one used to write config `preparing` in a full reconcile.
    expect((await hsets()) - before).toBeLessThanOrEqual(2);
    expect(disabled.isActive()).toBe(false);
  });
});
