import { setTimeout as sleep } from 'node:timers/promises';
import type { Advisory, DeactivateInfo, JoinOptions, Member, RenewalEvent } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChildEvent,
  FAST,
  hrNow,
  MemberProcess,
  type MemberProcessOptions,
  memberFactory,
  Timeline,
  uniqueGroup,
  waitFor,
} from './helpers.js';

const { heartbeatInterval: H, activationInterval: A } = FAST;

// Timing tolerances, for a loaded two-core machine with other test files running alongside.
// Safety assertions (leases, quarantine, "never more than N") carry none.
/** How much later than the lease's lapse a failover may land: a round trip, a timer, a busy core. */
const FAILOVER_SLACK_MS = 250;
/** How much earlier than P the prepare may seem to come, from reading the renewal's time on two clocks. */
const PREPARE_EARLY_SLACK_MS = 30;
/** How much later than P (plus one heartbeat) the prepare may come. */
const PREPARE_LATE_SLACK_MS = 200;
/** L1: after faults heal, exactly min(N, live) members are active within A + H + 0.5 s. */
const CONVERGENCE_MS = A + H + 500;
/** Child processes compile TypeScript on start: slow on a busy machine. */
const CHILD_START_MS = 20_000;

// Servers the test faults are its own; the others share one. Registered before the member
// factory, so (after-hooks run in reverse) members leave before their server stops.
const faulted: RedisServer[] = [];
const readers: Redis[] = [];
afterEach(async () => {
  for (const reader of readers.splice(0)) reader.disconnect();
  await Promise.all(faulted.splice(0).map((server) => server.stop()));
});

let shared: RedisServer;
beforeAll(async () => {
  shared = await startRedis();
});

let current: RedisServer | undefined;
const join = memberFactory(() => {
  if (!current) throw new Error('no server for in-process members: call ownServer() first');
  return current;
});

/** A server this test may kill, pause or restart; in-process members join it. */
async function ownServer(): Promise<RedisServer> {
  const server = await startRedis();
  faulted.push(server);
  current = server;
  return server;
}

/** A plain client for reading the group's state; it reconnects across a restart. */
function reader(server: RedisServer): Redis {
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 });
  redis.on('error', () => undefined);
  readers.push(redis);
  return redis;
}

/** The member's lease deadline on Redis's clock (ms), or undefined if it holds no lease. */
async function leaseDeadline(redis: Redis, group: string, memberId: string): Promise<number | undefined> {
  const score = await redis.zscore(groupKeys(group).leases, memberId);
  return score === null ? undefined : Number(score);
}

interface LogEntry {
  type: string;
  member: string;
  /** Redis time of the transition, in ms. */
  time: number;
  fields: Record<string, string>;
}

/** The group's transition log (the `log` stream), oldest first. */
async function transitionLog(redis: Redis, group: string): Promise<LogEntry[]> {
  const entries = await redis.xrange(groupKeys(group).log, '-', '+');
  return entries.map(([, flat]) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) fields[flat[i] as string] = flat[i + 1] as string;
    return { type: fields.type ?? '', member: fields.member ?? '', time: Number(fields.time), fields };
  });
}

/**
 * The offset that turns Redis time (ms) into hrNow() time: taken from the TIME sample with
 * the shortest round trip, so it is off by at most half of that round trip.
 */
async function redisToHr(redis: Redis): Promise<(redisMs: number) => number> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let i = 0; i < 10; i++) {
    const before = hrNow();
    const [seconds, micros] = await redis.time();
    const after = hrNow();
    const redisMs = Number(seconds) * 1000 + Number(micros) / 1000;
    if (after - before < best.rtt) best = { rtt: after - before, offset: (before + after) / 2 - redisMs };
  }
  const { offset } = best;
  return (redisMs) => redisMs + offset;
}

function spawnMember(options: Omit<MemberProcessOptions, 'url'>): MemberProcess {
  return new MemberProcess({ url: shared.url, ...options });
}

/** Waits for a child's event; a child that exits first fails at once (its stderr, above, says why). */
function reported(child: MemberProcess, event: string): Promise<ChildEvent> {
  const exitedFirst = child.exited.then(() => {
    const { exitCode, signalCode } = child.child;
    throw new Error(`${child.id} exited (${exitCode ?? signalCode}) before it reported ${event}`);
  });
  return Promise.race([child.waitFor(event, CHILD_START_MS), exitedFirst]);
}

/** Everything the children believed, on one clock; a killed child believes nothing from its kill on. */
function childTimeline(children: MemberProcess[], killedAt: ReadonlyMap<string, number>): Timeline {
  const timeline = new Timeline();
  for (const child of children) {
    for (const e of child.events) {
      if (e.event === 'activate' || e.event === 'deactivate') {
        timeline.record({ t: e.t, member: child.id, event: e.event, epoch: Number(e.epoch), reason: String(e.reason) });
      } else if (e.event === 'lease') {
        timeline.record({ t: e.t, member: child.id, event: 'lease', deadline: Number(e.deadline) });
      }
    }
    const t = killedAt.get(child.id);
    if (t !== undefined) timeline.record({ t, member: child.id, event: 'deactivate', reason: 'killed' });
  }
  return timeline;
}

const eventsOf = (child: MemberProcess, event: string): ChildEvent[] => child.events.filter((e) => e.event === event);

/** What an in-process member went through, on the performance.now() clock of this process. */
interface MemberRecord {
  renewals: (RenewalEvent & { at: number })[];
  deactivations: (DeactivateInfo & { at: number })[];
  advisories: (Advisory & { at: number })[];
}

function recordMember(member: Member, timeline: Timeline): MemberRecord {
  const record: MemberRecord = { renewals: [], deactivations: [], advisories: [] };
  timeline.watch(member);
  member.on('renewal', (r) => record.renewals.push({ ...r, at: performance.now() }));
  member.on('deactivate', (info) => record.deactivations.push({ ...info, at: performance.now() }));
  member.on('advisory', (a) => record.advisories.push({ ...a, at: performance.now() }));
  return record;
}

const activeIds = (members: Member[]) =>
  members
    .filter((m) => m.isActive())
    .map((m) => m.id)
    .sort();

/** Waits until exactly `ids` are active; returns when that happened (performance.now()). */
async function untilActive(members: Member[], ids: string[], timeoutMs: number): Promise<number> {
  const wanted = JSON.stringify([...ids].sort());
  await waitFor(() => JSON.stringify(activeIds(members)) === wanted, `exactly ${ids.join(', ')} active`, timeoutMs, 2);
  return performance.now();
}

/** TOO_MANY_ACTIVE must never happen: Redis itself counted more slots than the goal. */
function expectNeverTooMany(records: Map<string, MemberRecord>): void {
  for (const record of records.values()) expect(record.advisories.map((a) => a.code)).not.toContain('TOO_MANY_ACTIVE');
}

/** The groups that fault Redis keep N = 2 of three members active, so "the top N" is not trivial. */
const GOAL = 2;
const TOP = ['w30', 'w20'];

/** Joins w30, w20 and w10 with a goal of 2, each recorded. */
async function joinRanked(group: string, timeline: Timeline, intervals: Partial<JoinOptions> = {}) {
  const members: Member[] = [];
  const records = new Map<string, MemberRecord>();
  for (const [memberId, weight] of [
    ['w30', 30],
    ['w20', 20],
    ['w10', 10],
  ] as const) {
    const member = await join({ group, memberId, weight, activeGoal: GOAL, ...intervals });
    records.set(memberId, recordMember(member, timeline));
    members.push(member);
  }
  return { members, records };
}

describe('crash failover', () => {
  it('activates the ranking standby within A of a SIGKILL, never before the dead lease lapsed on Redis’s clock', async () => {
    const group = uniqueGroup('crash');
    const redis = reader(shared);
    const primary = spawnMember({ group, memberId: 'primary', weight: 30 });
    await reported(primary, 'activate');
    const backup = spawnMember({ group, memberId: 'backup', weight: 20 });
    const spare = spawnMember({ group, memberId: 'spare', weight: 10 });
    await Promise.all([reported(backup, 'joined'), reported(spare, 'joined')]);
    await sleep(4 * H);

    const killedAt = await primary.kill('SIGKILL');
    // The dead member can renew no more: its deadline is final. (A renewal it wrote just
    // before dying may still be in Redis's socket buffer: read twice, keep the later.)
    const firstRead = await leaseDeadline(redis, group, 'primary');
    await sleep(H / 2);
    const deadline = Math.max(firstRead ?? 0, (await leaseDeadline(redis, group, 'primary')) ?? 0);
    expect(deadline).toBeGreaterThan(0);

    const activation = await backup.waitFor('activate', 3 * A);
    const failoverMs = activation.t - killedAt;
    const granted = (await transitionLog(redis, group)).find((e) => e.type === 'activate' && e.member === 'backup');
    const slot = JSON.parse((await redis.hget(groupKeys(group).slots, String(activation.slot))) ?? '{}') as {
      m?: string;
      e?: string | number;
      t?: string | number;
    };
    console.info(
      `crash failover: kill -> activate ${failoverMs.toFixed(1)} ms; activation ${(granted?.time ?? Number.NaN) - deadline} ms (Redis) after the lease deadline ${deadline} (read at the kill: ${firstRead})`,
    );

    expect(activation.reason).toBe('failover');
    expect(activation.epoch).toBeGreaterThan(Number(primary.find('activate')?.epoch));
    expect(failoverMs).toBeLessThan(A + FAILOVER_SLACK_MS);
    // Safety, on Redis's clock: granted no earlier than the dead lease's deadline.
    expect(granted?.time).toBeGreaterThanOrEqual(deadline);
    expect(slot.m).toBe('backup');
    expect(Number(slot.e)).toBe(activation.epoch);
    expect(Number(slot.t)).toBeGreaterThanOrEqual(deadline);
    await sleep(2 * H);
    expect(eventsOf(spare, 'activate')).toEqual([]);
    expect(childTimeline([primary, backup, spare], new Map([['primary', killedAt]])).maxConcurrentActive()).toBe(1);
  });

  it('sends the ranking standby prepare about P after the dead active’s last renewal, then activate', async () => {
    const group = uniqueGroup('prepare');
    const P = 200;
    const redis = reader(shared);
    const toHr = await redisToHr(redis);
    const primary = spawnMember({ group, memberId: 'primary', weight: 30, preparationInterval: P });
    await reported(primary, 'activate');
    const backup = spawnMember({ group, memberId: 'backup', weight: 20, preparationInterval: P });
    await reported(backup, 'joined');
    await sleep(4 * H);

    const killedAt = await primary.kill('SIGKILL');
    await sleep(H / 2);
    const deadline = await leaseDeadline(redis, group, 'primary');
    expect(deadline).toBeDefined();
    // A lease runs A from the renewal that set it: this is the dead member's last renewal.
    const lastRenewal = toHr((deadline ?? 0) - A);

    const activation = await backup.waitFor('activate', 3 * A);
    const prepare = eventsOf(backup, 'prepare')
      .filter((e) => e.t <= activation.t)
      .at(-1);
    const sinceRenewal = (prepare?.t ?? Number.NaN) - lastRenewal;
    console.info(
      `prepare: ${sinceRenewal.toFixed(1)} ms after the last renewal (P = ${P}), ${(activation.t - (prepare?.t ?? 0)).toFixed(1)} ms before activate; kill -> activate ${(activation.t - killedAt).toFixed(1)} ms`,
    );

    expect(prepare).toBeDefined();
    expect(prepare?.reason).toBe('lease-aging');
    expect(prepare?.t).toBeLessThan(activation.t);
    expect(sinceRenewal).toBeGreaterThanOrEqual(P - PREPARE_EARLY_SLACK_MS);
    expect(sinceRenewal).toBeLessThan(P + H + PREPARE_LATE_SLACK_MS);
    expect(activation.reason).toBe('failover');
    expect(childTimeline([primary, backup], new Map([['primary', killedAt]])).maxConcurrentActive()).toBe(1);
  });
});

describe('Redis paused', () => {
  it('demotes every active member before its lease could lapse, then converges on the top N after resume', async () => {
    const server = await ownServer();
    const group = uniqueGroup('pause');
    const timeline = new Timeline();
    const { members, records } = await joinRanked(group, timeline);
    await untilActive(members, TOP, 5000);
    await sleep(4 * H);

    const pausedAt = performance.now();
    await server.pause();
    const pauseMs = 2.5 * A;
    try {
      for (const id of TOP) {
        await waitFor(() => (records.get(id)?.deactivations.length ?? 0) > 0, `${id} to demote itself`, pauseMs);
      }
      // Everyone still believing it is active now would be a bug: nobody can renew.
      expect(activeIds(members)).toEqual([]);
      await sleep(Math.max(0, pausedAt + pauseMs - performance.now()));
    } finally {
      await server.resume();
    }
    const resumedAt = performance.now();

    for (const id of TOP) {
      const record = records.get(id) as MemberRecord;
      const demotion = record.deactivations[0];
      expect(demotion?.reason).toBe('lease-lost');
      expect(record.advisories.filter((a) => a.at <= (demotion?.at ?? 0)).map((a) => a.code)).toContain('LEASE_LOST');
      const lastRenewal = record.renewals.filter((r) => r.outcome === 'ok' && r.at <= (demotion?.at ?? 0)).at(-1);
      expect(lastRenewal).toBeDefined();
      // The server's lease runs A from when it processed that renewal, which was after it was sent.
      expect(demotion?.at).toBeLessThan((lastRenewal?.sentAt ?? 0) + A);
      console.info(
        `pause: ${id} demoted ${((lastRenewal?.sentAt ?? 0) + A - (demotion?.at ?? 0)).toFixed(1)} ms before its lease could lapse`,
      );
    }

    const convergedAt = await untilActive(members, TOP, 5000);
    console.info(`pause: converged ${(convergedAt - resumedAt).toFixed(1)} ms after resume`);
    expect(convergedAt - resumedAt).toBeLessThan(CONVERGENCE_MS);
    await sleep(4 * H);
    expect(activeIds(members)).toEqual([...TOP].sort());
    expect(timeline.maxConcurrentActive()).toBeLessThanOrEqual(GOAL);
    expectNeverTooMany(records);
  });
});

describe('Redis frozen', () => {
  it('keeps trying new lease connections while Redis is frozen, not one every two seconds', async () => {
    const server = await ownServer();
    await join({ group: uniqueGroup('frozen'), memberId: 'solo', weight: 10 });
    await sleep(4 * H);
    const received = async () =>
      Number(/total_connections_received:(\d+)/.exec(await server.admin('INFO', 'stats'))?.[1]);
    const before = await received();
    const frozenMs = 3000;
    await server.pause();
    try {
      await sleep(frozenMs);
    } finally {
      await server.resume();
    }
    await sleep(4 * H); // the server accepts what waited in its backlog
    // Every attempt's handshake times out on the frozen server; the socket must then be dropped
    // at once (ioredis' default disconnectTimeout waits 2 s for the peer to close it), or after a
    // failover the member would reach the promoted replica up to 2 s late. One connection is ours.
    const attempts = (await received()) - before - 1;
    console.info(`frozen for ${frozenMs} ms: ${attempts} lease connection attempts`);
    expect(attempts).toBeGreaterThanOrEqual(5);
  });
});

describe('Redis restarted empty', () => {
  it('activates nobody for A after a restart that outlived every lease, then the top N again with larger epochs', async () => {
    const server = await ownServer();
    const group = uniqueGroup('restart');
    const timeline = new Timeline();
    const { members, records } = await joinRanked(group, timeline);
    await untilActive(members, TOP, 5000);
    await sleep(4 * H);

    await server.kill('SIGKILL');
    // Wait until every lease is gone, so that no member can claim to hold a slot still.
    for (const id of TOP) {
      await waitFor(() => (records.get(id)?.deactivations.length ?? 0) > 0, `${id} to demote itself`, 2 * A);
    }
    const epochsBefore = timeline.entries.filter((e) => e.event === 'activate').map((e) => e.epoch ?? 0);
    const restartAt = hrNow();
    await server.restart({ keepData: false });
    const restartedAt = performance.now();

    const convergedAt = await untilActive(members, TOP, 5000);
    const redis = reader(server);
    const log = await transitionLog(redis, group);
    const createdAt = Number(await redis.hget(groupKeys(group).config, 'createdAt'));
    const activations = timeline.entries.filter((e) => e.event === 'activate' && e.t > restartAt);
    console.info(
      `restart: first activation ${(Math.min(...activations.map((e) => e.t)) - restartAt).toFixed(1)} ms after the restart began, converged ${(convergedAt - restartedAt).toFixed(1)} ms after it answered`,
    );

    expect(convergedAt - restartedAt).toBeLessThan(CONVERGENCE_MS);
    for (const record of records.values()) {
      expect(record.advisories.map((a) => a.code)).toContain('QUARANTINE');
    }
    // Quarantine: nobody activates within A of the restart, on the members' clock or on Redis's.
    expect(activations.length).toBeGreaterThanOrEqual(GOAL);
    for (const activation of activations) expect(activation.t).toBeGreaterThanOrEqual(restartAt + A);
    const granted = log.filter((e) => e.type === 'activate');
    expect(granted.length).toBeGreaterThanOrEqual(GOAL);
    for (const entry of granted) expect(entry.time).toBeGreaterThanOrEqual(createdAt + A);
    // Fencing: every epoch after the restart exceeds every epoch before it.
    const maxBefore = Math.max(...epochsBefore);
    for (const activation of activations) expect(activation.epoch).toBeGreaterThan(maxBefore);
    for (const member of members.filter((m) => m.isActive())) expect(member.epoch).toBeGreaterThan(maxBefore);
    expect(timeline.maxConcurrentActive()).toBeLessThanOrEqual(GOAL);
    expectNeverTooMany(records);
  });

  it('keeps the slots and epochs of actives whose leases are still valid across a quick restart, and grants nothing else', async () => {
    const server = await ownServer();
    const group = uniqueGroup('reclaim');
    const timeline = new Timeline();
    // Long leases: the members reconnect well within one, even on a busy machine.
    const slow = { heartbeatInterval: 100, activationInterval: 1500 };
    const { members, records } = await joinRanked(group, timeline, slow);
    await untilActive(members, TOP, 5000);
    const epochsBefore = new Map(members.filter((m) => m.isActive()).map((m) => [m.id, m.epoch]));

    await server.kill('SIGKILL');
    const restartAt = hrNow();
    await server.restart({ keepData: false });
    await waitFor(
      () => [...records.values()].every((r) => r.advisories.some((a) => a.code === 'QUARANTINE')),
      'every member to learn of the quarantine',
      slow.activationInterval,
    );
    // Past the quarantine, nothing has moved.
    await sleep(slow.activationInterval + 2 * slow.heartbeatInterval);

    expect(activeIds(members)).toEqual([...TOP].sort());
    for (const id of TOP) {
      expect(members.find((m) => m.id === id)?.epoch).toBe(epochsBefore.get(id));
      expect(records.get(id)?.deactivations).toEqual([]);
    }
    expect(timeline.entries.filter((e) => e.event === 'activate' && e.t > restartAt)).toEqual([]);
    const granted = (await transitionLog(reader(server), group)).filter((e) => e.type === 'activate');
    expect(granted.map((e) => [e.member, e.fields.reason, Number(e.fields.epoch)]).sort()).toEqual(
      TOP.map((id) => [id, 'reclaimed', epochsBefore.get(id)]).sort(),
    );
    expect(timeline.maxConcurrentActive()).toBeLessThanOrEqual(GOAL);
    expectNeverTooMany(records);
  });
});

describe('Redis restarted with its data', () => {
  it('holds every grant for A when the group was last written by another server (its replication id changed)', async () => {
    const server = await ownServer();
    const group = uniqueGroup('runid');
    const timeline = new Timeline();
    const intervals = { heartbeatInterval: 100, activationInterval: 1500 };
    const first = await join({ group, memberId: 'first', weight: 20, ...intervals });
    const second = await join({ group, memberId: 'second', weight: 10, ...intervals });
    const records = new Map([
      ['first', recordMember(first, timeline)],
      ['second', recordMember(second, timeline)],
    ]);
    await untilActive([first, second], ['first'], 5000);
    const epochBefore = first.epoch ?? 0;

    // Same data, new process: a new run_id. The active keeps its slot (its lease is valid).
    await server.restart({ keepData: true });
    await sleep(intervals.heartbeatInterval * 3);
    expect(activeIds([first, second])).toEqual(['first']);

    // The server change is found by the handover's grant, or earlier by a renewal that found
    // writes lost with the restart (those after the SAVE): the grant waits A from then.
    await first.leave();
    await untilActive([second], ['second'], intervals.activationInterval * 3);
    expect(records.get('second')?.advisories.map((a) => a.code)).toContain('QUARANTINE');
    expect(second.epoch ?? 0).toBeGreaterThan(epochBefore);
    const log = await transitionLog(reader(server), group);
    const changed = log.find((e) => e.type === 'quarantine' && e.fields.reason === 'server-changed');
    const activated = log.find((e) => e.type === 'activate' && e.member === 'second');
    expect(Number(changed?.fields.until) - (changed?.time ?? 0)).toBe(intervals.activationInterval);
    expect(activated?.time).toBeGreaterThanOrEqual(Number(changed?.fields.until));
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});
