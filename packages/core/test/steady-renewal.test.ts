// The steady-state renewal (lua/renew.lua `steady`): a renewal where nothing changed answers
// with the server's time alone, and runs none of the full renewal's work; any change — a member
// joins, leaves, lapses or changes weight, a key of the group is lost, the server loses
// everything, a lagging replica is promoted — gets the full view in the very next renewal.
// Simulated members call the real scripts (as scripts-model.test.ts does): each claims what its
// last view gave it and sends back what its last join or renew reply said (DESIGN S6).
import { randomUUID } from 'node:crypto';
import { type GroupKeys, groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis, uniqueGroup } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isSteady, type MemberView, type RenewalReply } from '../src/script-specs.js';
import { scripts } from '../src/scripts.js';

const A = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisServer;
let redis: Redis;
beforeAll(async () => {
  server = await startRedis();
  redis = new Redis(server.url, { connectionName: 'steady-member' });
});
afterAll(async () => {
  redis.disconnect();
  await server.stop();
});

/** Calls of each command since the last CONFIG RESETSTAT (commandstats counts commands inside scripts). */
async function commandCalls(on: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const [, name, n] of (await on.info('commandstats')).matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
    calls.set(name as string, Number(n));
  }
  return calls;
}

class Sim {
  readonly nonce = randomUUID();
  /** The latest join or renew reply, completed as the member completes a steady one. */
  view: MemberView | undefined;
  /** P: the next in line gets prepare hints only from full renewals. */
  preparation = 0;
  constructor(
    readonly id: string,
    public weight: number,
    readonly activeGoal = 1,
  ) {}
}

function memberArgs(keys: GroupKeys, m: Sim) {
  return {
    channel: keys.events,
    memberId: m.id,
    weight: m.weight,
    activeGoal: m.activeGoal,
    activationInterval: A,
    heartbeatInterval: 50,
    preparationInterval: m.preparation,
    host: 'steady',
    pid: 0,
    nonce: m.nonce,
  };
}

async function join(keys: GroupKeys, m: Sim, on: Redis = redis): Promise<MemberView> {
  m.view = await scripts.join(on, keys, memberArgs(keys, m));
  return m.view;
}

/** One renewal, as a member sends it; the reply as it came, and the view the member keeps. */
async function renew(keys: GroupKeys, m: Sim, on: Redis = redis): Promise<RenewalReply> {
  const v = m.view;
  const holds = v && (v.role === 'active' || v.role === 'releasing');
  const reply = await scripts.renew(on, keys, {
    ...memberArgs(keys, m),
    claimedEpoch: holds ? v.epoch : 0,
    claimedSlot: holds ? v.slot : -1,
    knownIncarnation: v?.incarnation ?? 0,
    knownVersion: v?.version ?? -1,
    epochFloor: holds ? v.epoch : 0,
    leaseEnd: v && v.role !== 'gone' ? v.serverNow + v.activationInterval : 0,
  });
  m.view = isSteady(reply)
    ? { ...(v as MemberView), serverNow: reply.serverNow, watchDeadline: reply.watchDeadline, rejoined: false }
    : reply;
  return reply;
}

/**
 * `members` join the group under `keys` and renew until the first `active` of them hold slots
 * (past the start-up quarantine); then every member's view is current.
 */
async function settle(keys: GroupKeys, members: Sim[], active: number): Promise<void> {
  for (const m of members) await join(keys, m);
  const holders = members.slice(0, active);
  const until = Date.now() + 10 * A;
  while (Date.now() < until) {
    for (const m of members) await renew(keys, m);
    if (holders.every((m) => m.view?.role === 'active')) break;
    await sleep(A / 6);
  }
  expect(holders.map((m) => m.view?.role)).toEqual(holders.map(() => 'active'));
  // Everyone learns the version of the grants.
  for (const m of members) await renew(keys, m);
}

/**
 * A group of `a` (weight 30, active), `b` (20, next in line) and `c` (10), past its start-up
 * quarantine, with every member's view current.
 */
async function settled(label: string): Promise<{ keys: GroupKeys; a: Sim; b: Sim; c: Sim }> {
  const keys = groupKeys(uniqueGroup(label));
  const [a, b, c] = [new Sim('a', 30), new Sim('b', 20), new Sim('c', 10)];
  await settle(keys, [a, b, c], 1);
  return { keys, a, b, c };
}

/** The full view came back, not the server's time alone. */
function full(reply: RenewalReply): MemberView {
  expect(isSteady(reply), 'the full view').toBe(false);
  return reply as MemberView;
}

describe('a renewal where nothing changed', () => {
  it('answers with the server time alone, for a holder and for a standby, and runs none of the full work', async () => {
    const { keys, a, c } = await settled('steady');
    const before = { ...(a.view as MemberView) };
    await redis.config('RESETSTAT');
    const replies = [await renew(keys, a), await renew(keys, c), await renew(keys, a), await renew(keys, c)];
    const calls = await commandCalls(redis);
    for (const reply of replies) expect(isSteady(reply)).toBe(true);
    // The member keeps its view; only the server's time moved.
    expect(a.view).toEqual({ ...before, serverNow: a.view?.serverNow });
    expect(a.view?.role).toBe('active');
    expect(c.view?.role).toBe('standby');
    // verify_keys' counts (HLEN) and read_slots' HGETALL run on every full renewal; nothing is
    // announced or logged. The scripts run as functions (FCALL), or as scripts where the server has none.
    expect((calls.get('fcall') ?? 0) + (calls.get('evalsha') ?? 0) + (calls.get('eval') ?? 0)).toBe(4);
    for (const full of ['hlen', 'hgetall', 'spublish', 'xadd', 'hset', 'zcount'])
      expect(calls.get(full) ?? 0, full).toBe(0);
    // Each looks for a lapsed lease once (one ZRANGEBYSCORE … LIMIT 0 1: no score is printed).
    expect(calls.get('zrangebyscore')).toBe(4);
    // Each extends its lease, or finds it extended already (a renewal in the same ms as the last).
    expect((calls.get('zadd') ?? 0) + (calls.get('zscore') ?? 0)).toBe(4);
    expect(calls.get('set')).toBe(4);
    // The visible heartbeat key is kept, with the role and a TTL of A.
    expect(await redis.get(keys.heartbeat('a'))).toBe('active');
    expect(await redis.pttl(keys.heartbeat('c'))).toBeGreaterThan(A / 2);
  });

  it('reads the config’s seal, one field, for a standby; the holder and the next in line read the config whole', async () => {
    const { keys, a, b, c } = await settled('sealed');
    // The seal: what the last script that finished left in the config.
    const [created, version, activation, next, held] = await redis.hmget(
      keys.config,
      'createdAt',
      'version',
      'activationInterval',
      'next',
      'held',
    );
    expect([next, held]).toEqual(['b', '1']);
    expect(await redis.hget(keys.config, 'stamp')).toBe(`${created}:${version}:${activation}|b|1`);
    await redis.config('RESETSTAT');
    expect(isSteady(await renew(keys, c))).toBe(true);
    let calls = await commandCalls(redis);
    expect(calls.get('hmget') ?? 0, 'HMGET').toBe(0);
    // The seal and c's record.
    expect(calls.get('hget')).toBe(2);
    for (const m of [a, b]) {
      await redis.config('RESETSTAT');
      expect(isSteady(await renew(keys, m))).toBe(true);
      calls = await commandCalls(redis);
      expect(calls.get('hmget'), `${m.id}'s HMGET of the config`).toBe(1);
    }
  });

  it('takes the full path while the group is quarantined, until a renewal after the end closes it', async () => {
    const { keys, c } = await settled('sealed-quarantine');
    await redis.del(keys.rank);
    const found = full(await renew(keys, c));
    expect(found.quarantineUntil).toBeGreaterThan(found.serverNow);
    expect(await redis.hget(keys.config, 'stamp')).toBeNull();
    // c knows the version of the quarantine now: nothing else changes, yet no renewal is steady.
    let view = full(await renew(keys, c));
    while (view.serverNow < found.quarantineUntil) {
      expect(view.version).toBe(found.version);
      await sleep(A / 6);
      view = full(await renew(keys, c));
    }
    // The one after the end closed it (a new version); the next is steady again.
    expect(view.quarantineUntil).toBe(0);
    expect(isSteady(await renew(keys, c))).toBe(true);
  });

  it('takes the full path after a script that changed the config and stopped part way, until one finishes', async () => {
    // Goal 2: a and b hold the slots, c is next in line, e stands by.
    const keys = groupKeys(uniqueGroup('sealed-partial'));
    const [a, b, c, e] = [new Sim('a', 30, 2), new Sim('b', 20, 2), new Sim('c', 10, 2), new Sim('e', 5, 2)];
    await settle(keys, [a, b, c, e], 2);
    expect(isSteady(await renew(keys, e))).toBe(true);
    // a's lease ends (its deadline set in the past, its heartbeat key gone with it; nobody renews
    // before the join).
    await redis.zadd(keys.leases, 'XX', 1, 'a');
    await redis.del(keys.heartbeat('a'));
    // Only a join reads the join sequence: d's join drops a's lapsed lease and frees its slot
    // (config `held` 1), then stops with CORRUPT before it announces anything.
    await redis.hset(keys.config, 'seq', 'x');
    await expect(join(keys, new Sim('d', 1, 2))).rejects.toMatchObject({ code: 'CORRUPT_STATE' });
    expect(await redis.hget(keys.config, 'held')).toBe('1');
    expect(await redis.hget(keys.config, 'stamp')).toBeNull();
    // e knows the version the join never bumped, and finds no lapsed lease: only the missing
    // seal sends it the full way, where the free slot goes to c.
    const view = full(await renew(keys, e));
    expect(view.slotsHeld).toBe(2);
    expect(isSteady(await renew(keys, e))).toBe(true);
  });

  it('answers the next in line with the holders’ earliest lease deadline too, which moves with their renewals', async () => {
    const { keys, a, b } = await settled('next');
    for (let round = 0; round < 3; round++) {
      await sleep(5);
      await renew(keys, a);
      expect(isSteady(await renew(keys, b))).toBe(true);
      expect(b.view?.watchDeadline).toBe((a.view as MemberView).serverNow + A);
      expect(b.view?.role).toBe('standby');
    }
  });

  it('is the full view for the next in line when it gets prepare hints (P > 0)', async () => {
    const { keys, b } = await settled('next-prepare');
    b.preparation = A / 2;
    expect(full(await renew(keys, b)).watchDeadline).toBeGreaterThan(0);
    expect(full(await renew(keys, b)).watchDeadline).toBeGreaterThan(0);
  });

  it('extends a lease the member was told less of (a reply it never got) without shortening it', async () => {
    const { keys, c } = await settled('reply-lost');
    const told = { ...(c.view as MemberView) };
    await sleep(20);
    // A renewal whose reply the member never got: the server holds a later deadline than c knows.
    expect(isSteady(await renew(keys, c))).toBe(true);
    const held = Number(await redis.zscore(keys.leases, 'c'));
    c.view = told;
    await sleep(5);
    expect(isSteady(await renew(keys, c))).toBe(true);
    const extended = Number(await redis.zscore(keys.leases, 'c'));
    expect(extended).toBe((c.view as MemberView).serverNow + A);
    expect(extended).toBeGreaterThan(held);
    // Told right again, the next renewal extends it by the time that passed.
    expect(isSteady(await renew(keys, c))).toBe(true);
    expect(Number(await redis.zscore(keys.leases, 'c'))).toBe((c.view as MemberView).serverNow + A);
  });
});

describe('a change reaches every member in its next renewal, with the full view', () => {
  it('another member joins, leaves, or changes weight', async () => {
    const { keys, a, b, c } = await settled('membership');
    const d = new Sim('d', 5);
    await join(keys, d);
    expect(full(await renew(keys, a)).liveMembers).toBe(4);
    expect(full(await renew(keys, c)).liveMembers).toBe(4);
    expect(isSteady(await renew(keys, c))).toBe(true);
    await scripts.leave(redis, keys, { channel: keys.events, memberId: 'd', nonce: d.nonce });
    expect(full(await renew(keys, c)).liveMembers).toBe(3);
    await renew(keys, a);
    await scripts.set_weight(redis, keys, {
      channel: keys.events,
      memberId: 'b',
      weight: 40,
      preparationInterval: 0,
      nonce: b.nonce,
    });
    // b now outranks a: a is asked for its slot back.
    expect(full(await renew(keys, a)).role).toBe('releasing');
    expect(full(await renew(keys, c)).version).toBe((a.view as MemberView).version);
  });

  it('its own weight, sent with the renewal, differs from its record', async () => {
    const { keys, c } = await settled('own-weight');
    c.weight = 11;
    expect(full(await renew(keys, c)).weight).toBe(11);
    expect(isSteady(await renew(keys, c))).toBe(true);
  });

  it('a member’s lease lapses', async () => {
    const { keys, a, c } = await settled('lapse');
    // b stops renewing; a and c go on.
    const until = Date.now() + A + 100;
    let lapsed: MemberView | undefined;
    while (!lapsed && Date.now() < until + A) {
      const reply = await renew(keys, c);
      await renew(keys, a);
      if (!isSteady(reply) && reply.liveMembers === 2) lapsed = reply;
      await sleep(A / 10);
    }
    expect(lapsed, 'c saw the lapse').toBeDefined();
    expect(await redis.zscore(keys.leases, 'b')).toBeNull();
  });

  it.each(['config', 'members', 'leases', 'rank', 'slots', 'log'] as const)('the %s key is lost', async (kind) => {
    const { keys, a, c } = await settled(`lost-${kind}`);
    expect(isSteady(await renew(keys, c))).toBe(true);
    await redis.del(keys[kind]);
    const view = full(await renew(keys, c));
    // The group noticed: quarantined (or, the config lost, formed again) and announced.
    expect(view.quarantineUntil).toBeGreaterThan(view.serverNow);
    // The active keeps its slot and epoch (S6), in the full view.
    const epoch = (a.view as MemberView).epoch;
    const held = full(await renew(keys, a));
    expect([held.role, held.epoch]).toEqual(['active', epoch]);
  });

  it('an older copy of the slots is restored, counts unchanged: the holder finds its slot naming another', async () => {
    const { keys, a, b, c } = await settled('restored-slots');
    // d stands by behind c (the next in line once b holds the slot).
    const d = new Sim('d', 5);
    await join(keys, d);
    for (const m of [a, b, c, d]) await renew(keys, m);
    const old = await redis.dumpBuffer(keys.slots);
    // a leaves: b takes the slot, with a newer epoch.
    await scripts.leave(redis, keys, { channel: keys.events, memberId: 'a', nonce: a.nonce });
    let granted: MemberView | undefined;
    const until = Date.now() + 10 * A;
    while (!granted && Date.now() < until) {
      const reply = await renew(keys, b);
      if (!isSteady(reply) && reply.role === 'active') granted = reply;
    }
    await renew(keys, c);
    await renew(keys, d);
    expect(isSteady(await renew(keys, b))).toBe(true);
    expect(isSteady(await renew(keys, d))).toBe(true);
    // The slots as they were: a (without a record now) holds slot 0.
    await redis.restore(keys.slots, 0, old as Buffer, 'REPLACE');
    // b claims slot 0 with its epoch; the server names a there: the full renewal finds lost
    // state, and b keeps its slot (S6: it claims that very slot and epoch).
    const view = full(await renew(keys, b));
    expect([view.role, view.epoch]).toEqual(['active', (granted as MemberView).epoch]);
    expect(view.quarantineUntil).toBeGreaterThan(view.serverNow);
    // The others learn of the quarantine with their next renewal.
    const found = full(await renew(keys, d));
    expect(found.quarantineUntil).toBeGreaterThan(found.serverNow);
  });

  it('an older copy of the leases is restored, counts unchanged: a lease ends before its member was told', async () => {
    const { keys, c } = await settled('restored-leases');
    const old = await redis.dumpBuffer(keys.leases);
    await sleep(20);
    expect(isSteady(await renew(keys, c))).toBe(true);
    await redis.restore(keys.leases, 0, old as Buffer, 'REPLACE');
    const view = full(await renew(keys, c));
    expect(view.quarantineUntil).toBeGreaterThan(view.serverNow);
  });

  it('its record is restored as another object with its id wrote it: refused, as the full renewal refuses it', async () => {
    const { keys, c } = await settled('replaced');
    const record = JSON.parse((await redis.hget(keys.members, 'c')) as string) as Record<string, unknown>;
    await redis.hset(keys.members, 'c', JSON.stringify({ ...record, n: 'another-object' }));
    await expect(renew(keys, c)).rejects.toMatchObject({ code: 'MEMBER_EXISTS' });
  });

  it('the server restarts with nothing (data, scripts and functions lost)', async () => {
    const { keys, a, c } = await settled('restart');
    await redis.flushall();
    await redis.script('FLUSH');
    await redis.call('FUNCTION', 'FLUSH');
    const view = full(await renew(keys, c));
    expect(view.rejoined).toBe(true);
    const held = full(await renew(keys, a));
    expect([held.role, held.epoch]).toEqual(['active', (a.view as MemberView).epoch]);
  });

  it('the first renewal on a server that never ran the library (restarted, promoted) checks the server (F29)', async () => {
    const { keys, a, c } = await settled('fresh-server');
    expect(isSteady(await renew(keys, c)), 'steady before').toBe(true);
    // What a restart with the data kept does to the group, without the wait of one (which may
    // outlast the leases, and then any renewal is full): the library is loaded afresh (the client
    // loads it again), and the group was last written by another replication history.
    await redis.call('FUNCTION', 'FLUSH');
    await redis.hset(keys.config, 'replId', 'a-server-since-gone');
    const view = full(await renew(keys, c));
    expect(view.quarantineUntil).toBeGreaterThan(view.serverNow);
    const replId = await redis.hget(keys.config, 'replId');
    expect((await redis.info('replication')).includes(`master_replid:${replId}`)).toBe(true);
    const held = full(await renew(keys, a));
    expect([held.role, held.epoch]).toEqual(['active', (a.view as MemberView).epoch]);
    // Checked once on this server: steady again once the quarantine ended and a full renewal closed it.
    await sleep(A + 20);
    for (const m of [a, c]) full(await renew(keys, m));
    expect(isSteady(await renew(keys, c))).toBe(true);
  });

  it('a replica that lags is promoted', async () => {
    const replica = await startRedis();
    const promoted = new Redis(replica.url);
    try {
      const { keys, a, c } = await settled('promotion');
      await redis.config('SET', 'repl-diskless-sync-delay', '0');
      await promoted.call('REPLICAOF', '127.0.0.1', String(server.port));
      await waitForSync(promoted);
      // The link breaks (the replica is promoted); the master goes on a little longer.
      await promoted.call('REPLICAOF', 'NO', 'ONE');
      await join(keys, new Sim('d', 5));
      expect(full(await renew(keys, c)).liveMembers).toBe(4);
      // The members reach the promoted server: it is behind what c knows.
      const view = full(await renew(keys, c, promoted));
      expect(view.quarantineUntil).toBeGreaterThan(view.serverNow);
      const held = full(await renew(keys, a, promoted));
      expect([held.role, held.epoch]).toEqual(['active', (a.view as MemberView).epoch]);
    } finally {
      promoted.disconnect();
      await replica.stop();
    }
  });
});

async function waitForSync(replica: Redis): Promise<void> {
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    if ((await replica.info('replication')).includes('master_link_status:up')) return;
    await sleep(20);
  }
  throw new Error('the replica did not sync');
}
