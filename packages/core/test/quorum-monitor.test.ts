import { type GroupSnapshot, type Monitor, monitorGroup } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis, uniqueGroup, waitFor } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

// A monitor over K = 3 independent servers (DESIGN §9): a member counts as active only when two
// of them show it the same slot and epoch; one server lost changes nothing, two lost make the
// monitor unreachable. The groups' state is written by hand on each server, so that each test
// says exactly what every server holds.

const LEASE_MS = 60_000;

interface Held {
  id: string;
  weight?: number;
  slot?: number;
  epoch?: number;
  state?: 'active' | 'releasing';
}

/** Writes a group's keys on one server as the member scripts would leave them. */
async function writeGroup(redis: Redis, group: string, members: Held[], goal = 1): Promise<void> {
  const keys = groupKeys(group);
  const time = await redis.time();
  const now = Number(time[0]) * 1000 + Math.floor(Number(time[1]) / 1000);
  const epoch = Math.max(0, ...members.map((m) => m.epoch ?? 0));
  const multi = redis.multi();
  multi.del(keys.config, keys.members, keys.leases, keys.rank, keys.slots);
  multi.hset(keys.config, { activeGoal: goal, activationInterval: LEASE_MS, heartbeatInterval: 1000 });
  multi.hset(keys.config, { version: 1, epoch, createdAt: now, held: members.filter((m) => m.epoch).length });
  members.forEach((m, seq) => {
    const weight = m.weight ?? 10;
    multi.hset(keys.members, m.id, JSON.stringify({ w: weight, q: seq + 1, h: 'test', p: 1 }));
    multi.zadd(keys.leases, now + LEASE_MS, m.id);
    multi.zadd(keys.rank, (65535 - weight) * 2 * 2 ** 32 + (m.epoch ? 0 : 2 ** 32) + seq + 1, m.id);
    if (m.epoch !== undefined) {
      const slot = { m: m.id, e: String(m.epoch), t: String(now), s: m.state ?? 'active', r: 'initial' };
      multi.hset(keys.slots, String(m.slot ?? 0), JSON.stringify(slot));
    }
  });
  await multi.exec();
}

const summary = (s: GroupSnapshot) =>
  `${s.activeCount}/${s.activeGoal} ${s.members.map((m) => `${m.id}:${m.state}${m.epoch ? `@${m.slot}/${m.epoch}` : ''}`).join(' ')}`;

const monitors: Monitor[] = [];
afterEach(async () => {
  await Promise.all(monitors.splice(0).map((m) => m.close()));
});

async function startThree(): Promise<{ servers: RedisServer[]; clients: Redis[] }> {
  const servers = await Promise.all([startRedis(), startRedis(), startRedis()]);
  const clients = servers.map((s) => new Redis(s.url, { connectionName: 'test-writer', maxRetriesPerRequest: 0 }));
  // The tests kill servers under these clients: their reconnection errors are expected.
  for (const c of clients) c.on('error', () => {});
  return { servers, clients };
}

describe('monitorGroup over three servers', () => {
  let servers: RedisServer[];
  let clients: Redis[];
  beforeAll(async () => {
    ({ servers, clients } = await startThree());
  });
  afterAll(async () => {
    for (const c of clients) c.disconnect();
    await Promise.all(servers.map((s) => s.stop()));
  });

  async function watch(group: string) {
    const monitor = await monitorGroup({ redis: servers.map((s) => s.url), group });
    monitors.push(monitor);
    // monitorGroup resolves once two servers answered; each test says what all three hold, and a
    // third that starts only after the test's next write would leave that write unread.
    await waitFor(
      () => 'servers' in monitor && monitor.servers().every((s) => s.reachable),
      'all three servers read',
      5000,
    );
    const changes: GroupSnapshot[] = [];
    monitor.on('change', (s) => changes.push(s));
    return { monitor, changes };
  }

  it('counts a member active only when two servers show it the same slot and epoch', async () => {
    const group = uniqueGroup('quorum-mon');
    const [one, two, three] = clients as [Redis, Redis, Redis];
    await writeGroup(one, group, [{ id: 'a', epoch: 1 }, { id: 'b' }]);
    await writeGroup(two, group, [{ id: 'a', epoch: 2 }, { id: 'b' }]);
    await writeGroup(three, group, [{ id: 'a', epoch: 3 }, { id: 'b' }]);
    const { monitor, changes } = await watch(group);
    // Each server granted its own epoch: no majority holds the same grant.
    expect(summary(monitor.snapshot())).toBe('0/1 a:standby b:standby');
    await writeGroup(three, group, [{ id: 'a', epoch: 2 }, { id: 'b' }]);
    await monitor.refresh();
    expect(summary(monitor.snapshot())).toBe('1/1 a:active@0/2 b:standby');
    expect(changes.map(summary)).toEqual(['1/1 a:active@0/2 b:standby']);
  });

  it('the same epoch on different slots is no grant; a minority asking for the slot back changes nothing', async () => {
    const group = uniqueGroup('quorum-mon');
    const [one, two, three] = clients as [Redis, Redis, Redis];
    await writeGroup(one, group, [{ id: 'a', epoch: 5, slot: 0 }], 2);
    await writeGroup(two, group, [{ id: 'a', epoch: 5, slot: 1 }], 2);
    await writeGroup(three, group, [{ id: 'a' }], 2);
    const { monitor } = await watch(group);
    expect(summary(monitor.snapshot())).toBe('0/2 a:standby');
    await writeGroup(two, group, [{ id: 'a', epoch: 5, slot: 0, state: 'releasing' }], 2);
    await writeGroup(three, group, [{ id: 'a', epoch: 5, slot: 0 }], 2);
    await monitor.refresh();
    expect(summary(monitor.snapshot())).toBe('1/2 a:active@0/5');
    await writeGroup(three, group, [{ id: 'a', epoch: 5, slot: 0, state: 'releasing' }], 2);
    await monitor.refresh();
    expect(summary(monitor.snapshot())).toBe('1/2 a:releasing@0/5');
  });

  it('iterates: the current snapshot, then each change, and ends when the monitor closes', async () => {
    const group = uniqueGroup('quorum-mon');
    for (const c of clients) await writeGroup(c, group, [{ id: 'a' }]);
    const { monitor } = await watch(group);
    const seen: string[] = [];
    const iterating = (async () => {
      for await (const snapshot of monitor) seen.push(summary(snapshot));
    })();
    for (const c of clients) await writeGroup(c, group, [{ id: 'a', epoch: 7 }]);
    await monitor.refresh();
    await waitFor(() => seen.length === 2, 'the change iterated', 5000);
    await monitor.close();
    await iterating;
    expect(seen).toEqual(['0/1 a:standby', '1/1 a:active@0/7']);
  });

  it('leaves out a member that only one server lists', async () => {
    const group = uniqueGroup('quorum-mon');
    const [one, two, three] = clients as [Redis, Redis, Redis];
    await writeGroup(one, group, [
      { id: 'a', epoch: 9 },
      { id: 'lonely', weight: 100 },
    ]);
    await writeGroup(two, group, [{ id: 'a', epoch: 9 }]);
    await writeGroup(three, group, [{ id: 'a', epoch: 9 }]);
    const { monitor } = await watch(group);
    expect(summary(monitor.snapshot())).toBe('1/1 a:active@0/9');
  });
});

describe('monitorGroup over three servers, when servers die', () => {
  it('one server killed changes nothing; a second makes it unreachable, and a return makes it reachable again', async () => {
    const { servers, clients } = await startThree();
    try {
      const group = uniqueGroup('quorum-mon');
      for (const c of clients) await writeGroup(c, group, [{ id: 'a', epoch: 4 }, { id: 'b' }]);
      const monitor = await monitorGroup({ redis: servers.map((s) => s.url), group });
      monitors.push(monitor);
      const events: string[] = [];
      monitor.on('change', (s) => events.push(`change ${summary(s)}`));
      monitor.on('unreachable', () => events.push('unreachable'));
      monitor.on('reachable', () => events.push('reachable'));
      // monitorGroup resolves once Q servers read the group; the third may still be connecting
      // (on a loaded machine), and a kill before it reads would leave one server of three.
      const everyRead = () => 'servers' in monitor && monitor.servers().every((s) => s.reachable);
      await waitFor(everyRead, 'every server read', 10_000);
      await servers[2]?.kill('SIGKILL');
      await monitor.refresh();
      expect(summary(monitor.snapshot())).toBe('1/1 a:active@0/4 b:standby');
      expect(monitor.unreachableSince).toBeUndefined();
      await servers[1]?.kill('SIGKILL');
      // Nobody writes, so nothing announces the loss: a read (here refresh) finds it.
      await waitFor(
        async () => {
          await monitor.refresh();
          return monitor.unreachableSince !== undefined;
        },
        'unreachable with one server of three',
        10_000,
      );
      // The last combined snapshot stays, as with one server that stopped answering.
      expect(summary(monitor.snapshot())).toBe('1/1 a:active@0/4 b:standby');
      await servers[1]?.restart();
      const back = new Redis(servers[1]?.url as string);
      await writeGroup(back, group, [{ id: 'a', epoch: 4 }, { id: 'b' }]);
      back.disconnect();
      await waitFor(
        async () => {
          await monitor.refresh();
          return monitor.unreachableSince === undefined;
        },
        'reachable again',
        10_000,
      );
      expect(events).toEqual(['unreachable', 'reachable']);
    } finally {
      for (const c of clients) c.disconnect();
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  it('starts with one server down and counts it once it answers; refuses to start with two down', async () => {
    const { servers, clients } = await startThree();
    try {
      const group = uniqueGroup('quorum-mon');
      for (const c of clients) await writeGroup(c, group, [{ id: 'a', epoch: 4 }]);
      await servers[0]?.kill('SIGKILL');
      const monitor = await monitorGroup({ redis: servers.map((s) => s.url), group });
      monitors.push(monitor);
      expect(summary(monitor.snapshot())).toBe('1/1 a:active@0/4');
      // The server that was down at start is tried again until it answers, then counts.
      await servers[0]?.restart();
      const back = new Redis(servers[0]?.url as string);
      await writeGroup(back, group, [{ id: 'a', epoch: 6 }]);
      back.disconnect();
      await writeGroup(clients[1] as Redis, group, [{ id: 'a', epoch: 6 }]);
      await waitFor(
        async () => {
          await monitor.refresh();
          return summary(monitor.snapshot()) === '1/1 a:active@0/6';
        },
        'the restarted server to count',
        10_000,
      );
      await servers[0]?.kill('SIGKILL');
      await servers[1]?.kill('SIGKILL');
      await expect(monitorGroup({ redis: servers.map((s) => s.url), group })).rejects.toMatchObject({
        code: 'REDIS_UNAVAILABLE',
      });
    } finally {
      for (const c of clients) c.disconnect();
      await Promise.all(servers.map((s) => s.stop()));
    }
  });
});
