import {
  describeGroup,
  type GroupSnapshot,
  listGroups,
  monitorGroup,
  readHistory,
  setActiveGoal,
} from '@understudy/core';
import { type RedisServer, startChaosProxy, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ServerMonitor } from '../src/monitor/monitor.js';
import { FAST, MemberProcess, memberFactory, uniqueGroup, waitFor } from './helpers.js';

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
const join = memberFactory(() => server);

const monitors: { close(): Promise<void> }[] = [];
afterEach(async () => {
  await Promise.all(monitors.splice(0).map((m) => m.close()));
});
async function watch(group: string, options: { redis?: string; history?: number } = {}) {
  const monitor = await monitorGroup({ redis: options.redis ?? server.url, group, history: options.history ?? 0 });
  monitors.push(monitor);
  const changes: GroupSnapshot[] = [];
  monitor.on('change', (s) => changes.push(s));
  return { monitor, changes };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const summary = (s: GroupSnapshot) =>
  `${s.activeCount}/${s.activeGoal} ${s.members.map((m) => `${m.id}:${m.state}`).join(' ')}`;

describe('monitorGroup', () => {
  it('reports an empty snapshot for a group that does not exist yet, then follows its first member', async () => {
    const group = uniqueGroup();
    const { monitor, changes } = await watch(group);
    expect(monitor.snapshot()).toMatchObject({ group, activeCount: 0, activeGoal: 0, members: [] });
    const member = await join({ group, memberId: 'first', weight: 10 });
    await waitFor(() => member.isActive(), 'first active');
    await waitFor(() => monitor.snapshot().activeCount === 1, 'the monitor to count it');
    expect(changes.map(summary)).toEqual(['0/1 first:standby', '1/1 first:active']);
    const [reported] = monitor.snapshot().members;
    expect(reported).toMatchObject({ id: 'first', weight: 10, rank: 1, state: 'active', epoch: member.epoch });
    expect(reported?.leaseRemainingMs).toBeGreaterThan(0);
    expect(reported?.leaseRemainingMs).toBeLessThanOrEqual(FAST.activationInterval);
  });

  it('follows joins, preemption, goal changes and leaves, with no spurious change events', async () => {
    const group = uniqueGroup();
    const low = await join({ group, memberId: 'low', weight: 10 });
    await waitFor(() => low.isActive(), 'low active');
    const { monitor, changes } = await watch(group);
    const high = await join({ group, memberId: 'high', weight: 20 });
    await waitFor(() => high.isActive() && monitor.snapshot().members[0]?.state === 'active', 'high active');
    await setActiveGoal({ redis: server.url, group, activeGoal: 2 });
    await waitFor(() => monitor.snapshot().activeCount === 2, 'two active');
    await setActiveGoal({ redis: server.url, group, activeGoal: 1 });
    await waitFor(() => summary(monitor.snapshot()) === '1/1 high:active low:standby', 'back to one');
    await high.leave();
    await waitFor(() => summary(monitor.snapshot()) === '1/1 low:active', 'low active after the leave');
    const quiet = changes.length;
    await sleep(FAST.heartbeatInterval * 6);
    expect(changes.length).toBe(quiet);
    const seen = changes.map(summary);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).not.toBe(seen[i - 1]);
    // The sequence passes through every step, in order (intermediate steps may add entries).
    expect(seen[0]).toMatch(/^1\/1 high:standby low:(active|releasing)$/);
    const milestones = [
      '1/1 high:active low:standby',
      '2/2 high:active low:active',
      '1/1 high:active low:standby',
      '1/1 low:active',
    ];
    let at = 0;
    for (const entry of seen) if (entry === milestones[at]) at += 1;
    expect({ at, seen }).toMatchObject({ at: milestones.length });
  });

  it('yields the current state and then every change as an async iterator, until it is closed', async () => {
    const group = uniqueGroup();
    const { monitor } = await watch(group);
    const seen: string[] = [];
    const consumed = (async () => {
      for await (const snapshot of monitor) seen.push(summary(snapshot));
    })();
    const member = await join({ group, memberId: 'solo', weight: 10 });
    await waitFor(() => member.isActive() && seen.at(-1) === '1/1 solo:active', 'the iterator to see solo active');
    await monitor.close();
    await consumed;
    expect(seen).toEqual(['0/0 ', '0/1 solo:standby', '1/1 solo:active']);
  });

  it('notices a crashed active when its lease lapses, although no member writes anything', async () => {
    const group = uniqueGroup();
    const member = new MemberProcess({ url: server.url, group, memberId: 'doomed', weight: 10 });
    await member.waitFor('activate');
    const { monitor, changes } = await watch(group);
    await waitFor(() => monitor.snapshot().activeCount === 1, 'the monitor to see it active');
    const admin = new Redis(server.url);
    try {
      await member.kill('SIGKILL');
      const deadline = Number(await admin.zscore(`understudy:{${group}}:leases`, 'doomed'));
      const lost = await waitFor(
        () => changes.find((s) => s.activeCount === 0),
        'the monitor to report the loss',
        FAST.activationInterval * 3,
      );
      // Read at the deadline (Redis clock), within a small tolerance for timers and the round trip.
      expect(lost.serverTime).toBeGreaterThanOrEqual(deadline);
      expect(lost.serverTime - deadline).toBeLessThan(150);
      expect(lost.members).toEqual([]);
    } finally {
      admin.disconnect();
    }
  });

  it('works under a Redis user that may only read and subscribe, and that user cannot write', async () => {
    const restricted = await startRedis({
      acl: [
        'user default on nopass ~* &* +@all',
        'user watcher on >watch ~understudy:* &understudy:* -@all +@read +fcall_ro +evalsha_ro +eval_ro +time +ssubscribe +sunsubscribe +ping +info +client|setname',
      ],
    });
    const group = uniqueGroup();
    const member = await join({ group, memberId: 'm', weight: 10, redis: restricted.url });
    await waitFor(() => member.isActive(), 'm active');
    const url = `redis://watcher:watch@127.0.0.1:${restricted.port}`;
    const { monitor } = await watch(group, { redis: url, history: 10 });
    expect(summary(monitor.snapshot())).toBe('1/1 m:active');
    const other = await join({ group, memberId: 'other', weight: 20, redis: restricted.url });
    await waitFor(() => other.isActive(), 'other active');
    await waitFor(() => summary(monitor.snapshot()) === '1/1 other:active m:standby', 'the monitor to follow');

    const watcher = new Redis(url);
    try {
      await expect(watcher.set(`understudy:{${group}}:config`, 'x')).rejects.toThrow(/NOPERM/);
      await expect(watcher.eval('return 1', 0)).rejects.toThrow(/NOPERM/);
    } finally {
      watcher.disconnect();
    }
  });

  it('converges after its pub/sub connection is killed', async () => {
    const group = uniqueGroup();
    const first = await join({ group, memberId: 'first', weight: 10 });
    await waitFor(() => first.isActive(), 'first active');
    const { monitor } = await watch(group);
    const admin = new Redis(server.url);
    try {
      await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    } finally {
      admin.disconnect();
    }
    const second = await join({ group, memberId: 'second', weight: 20 });
    await waitFor(() => second.isActive(), 'second active');
    await waitFor(
      () => summary(monitor.snapshot()) === '1/1 second:active first:standby',
      'the monitor to converge',
      FAST.activationInterval * 4,
    );
  });

  it('replays the transitions of a scenario in order', async () => {
    const group = uniqueGroup();
    const a = await join({ group, memberId: 'a', weight: 10 });
    await waitFor(() => a.isActive(), 'a active');
    const b = await join({ group, memberId: 'b', weight: 20 });
    await waitFor(() => b.isActive(), 'b active');
    await b.setWeight(5);
    await waitFor(() => a.isActive(), 'a active again');
    await b.leave();
    const expected = [
      'goal::created',
      'join:a:join',
      'activate:a:initial',
      'join:b:join',
      'deactivate:a:preempted',
      'activate:b:handover',
      'weight:b:',
      'deactivate:b:preempted',
      'activate:a:handover',
      'leave:b:',
    ];
    const history = await readHistory({ redis: server.url, group, count: 100 });
    expect(history.map((t) => `${t.type}:${t.member}:${t.reason ?? ''}`)).toEqual(expected);
    for (let i = 1; i < history.length; i++) {
      expect(history[i]?.time).toBeGreaterThanOrEqual(history[i - 1]?.time ?? 0);
    }
    const activations = history.filter((t) => t.type === 'activate').map((t) => t.epoch ?? 0);
    expect(activations).toEqual([...activations].sort((x, y) => x - y));

    const { monitor } = await watch(group, { history: expected.length });
    const replayed: string[] = [];
    monitor.on('transition', (t) => replayed.push(`${t.type}:${t.member}:${t.reason ?? ''}`));
    await waitFor(() => replayed.length === expected.length, 'the replay');
    expect(replayed).toEqual(expected);
  });

  it('reads a snapshot and the new transitions in one round trip', async () => {
    const group = uniqueGroup();
    await join({ group, memberId: 'a', weight: 10 });
    // Every reply is held 200 ms on its way back: a read that waits for the snapshot's reply
    // before it asks for the transitions takes two of those, one that sends both at once one.
    const proxy = await startChaosProxy({ target: { host: server.host, port: server.port } });
    try {
      const { monitor } = await watch(group, { redis: proxy.url() });
      const transitions: string[] = [];
      monitor.on('transition', (t) => transitions.push(`${t.type} ${t.member}`));
      await join({ group, memberId: 'b', weight: 5 });
      await waitFor(() => transitions.includes('join b'), 'the monitor to read the join');
      proxy.setDelay(200, 0, 'to-client');
      const started = performance.now();
      await monitor.refresh(); // reads the transitions after the join too (none)
      const took = performance.now() - started;
      expect(took).toBeGreaterThanOrEqual(190);
      expect(took).toBeLessThan(390);
    } finally {
      await Promise.all(monitors.splice(0).map((m) => m.close()));
      await proxy.close();
    }
  });
});

describe('reading groups', () => {
  it('lists groups with SCAN and describes one', async () => {
    const groups = [uniqueGroup('list'), uniqueGroup('list')];
    for (const group of groups) await join({ group, memberId: 'm', weight: 7 });
    const listed = await listGroups({ redis: server.url });
    expect(listed).toEqual(expect.arrayContaining(groups));
    const described = await describeGroup({ redis: server.url, group: groups[0] as string });
    expect(described.members.map((m) => [m.id, m.weight, m.rank])).toEqual([['m', 7, 1]]);
    expect(described.activeGoal).toBe(1);
  });
});

describe('monitorGroup interrupted while it starts (issue 13 item 6, issue 19 item 10)', () => {
  async function slowProxy() {
    const proxy = await startChaosProxy({ target: { host: server.host, port: server.port } });
    proxy.setDelay(150); // every step of the start takes a few hundred ms
    return proxy;
  }

  it('rejects when its signal is aborted during the start, and leaves no connection open', async () => {
    const proxy = await slowProxy();
    try {
      const controller = new AbortController();
      const started = monitorGroup({ redis: proxy.url(), group: uniqueGroup(), signal: controller.signal });
      await waitFor(() => proxy.connectionCount > 0, 'the monitor to connect');
      controller.abort();
      await expect(started).rejects.toMatchObject({ name: 'AbortError' });
      await waitFor(() => proxy.connectionCount === 0, 'every connection to close', 2000);
    } finally {
      await proxy.close();
    }
  });

  it('rejects when it is closed during the start, and leaves no connection open', async () => {
    const proxy = await slowProxy();
    try {
      const monitor = new ServerMonitor({ redis: proxy.url(), group: uniqueGroup() });
      const started = monitor.start();
      await waitFor(() => proxy.connectionCount > 0, 'the monitor to connect');
      await monitor.close();
      await expect(started).rejects.toMatchObject({ name: 'AbortError' });
      await waitFor(() => proxy.connectionCount === 0, 'every connection to close', 2000);
    } finally {
      await proxy.close();
    }
  });
});
