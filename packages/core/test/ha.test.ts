import { joinGroup, type Member, monitorGroup } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisCluster, type SentinelSet, startCluster, startSentinelSet } from '@understudy/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { acquireLink } from '../src/connections/pool.js';
import { hrNow, memberFactory, Timeline, uniqueGroup, waitFor } from './helpers.js';

// Long enough to outlast a failover (node timeout / down-after 1 s, plus the election).
const intervals = { heartbeatInterval: 100, activationInterval: 4000 };
const { heartbeatInterval: H, activationInterval: A } = intervals;

const topologies: (RedisCluster | SentinelSet)[] = [];
const clients: Cluster[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(topologies.splice(0).map((t) => t.stop()));
});
// Members get their connection source per call (a Cluster client or Sentinel options).
const join = memberFactory(() => {
  throw new Error('pass `redis` explicitly');
});

const activeIds = (members: Member[]) =>
  members
    .filter((m) => m.isActive())
    .map((m) => m.id)
    .sort();

async function joinPair(group: string, redis: Parameters<typeof join>[0]['redis'], timeline: Timeline) {
  const members: Member[] = [];
  for (const [memberId, weight] of [
    ['high', 20],
    ['low', 10],
  ] as const) {
    const member = await join({ group, memberId, weight, redis, ...intervals });
    timeline.watch(member);
    members.push(member);
  }
  return members;
}

describe('Redis Cluster', () => {
  it('runs a group on the shard of its hash tag and converges after that shard’s master is SIGKILLed', async () => {
    const cluster = await startCluster();
    topologies.push(cluster);
    const client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    client.on('error', () => undefined);
    clients.push(client);
    const group = uniqueGroup('cluster');
    const timeline = new Timeline();
    const members = await joinPair(group, client, timeline);
    await waitFor(() => activeIds(members).join() === 'high', 'high active', A * 2);
    const monitor = await monitorGroup({ redis: client, group });
    try {
      expect(monitor.snapshot().members.map((m) => [m.id, m.state])).toEqual([
        ['high', 'active'],
        ['low', 'standby'],
      ]);
      // Announcements reach the members over sharded pub/sub: a leave hands over at once.
      const [high, low] = members as [Member, Member];
      const leftAt = hrNow();
      await high.leave();
      await waitFor(() => low.isActive(), 'low active', A);
      expect(timeline.of('low', 'activate')[0]?.t ?? Number.POSITIVE_INFINITY).toBeLessThan(leftAt + H);

      const epochBefore = low.epoch ?? 0;
      const master = await cluster.masterFor(`understudy:{${group}}:config`);
      await master.kill('SIGKILL');
      await cluster.waitUntilHealthy();
      const healedAt = performance.now();
      // The promoted replica is another server: grants wait out a quarantine; the member
      // either kept its slot or gets a new, larger epoch.
      await waitFor(() => low.isActive(), 'low active again after the failover', A + H + 5000);
      expect(low.epoch ?? 0).toBeGreaterThanOrEqual(epochBefore);
      expect(performance.now() - healedAt).toBeLessThan(A + H + 5000);
      await waitFor(() => monitor.snapshot().activeCount === 1, 'the monitor to see one active', A);
      expect(timeline.maxConcurrentActive()).toBe(1);
    } finally {
      await monitor.close();
    }
  });
});

describe('Redis Cluster lease connection', () => {
  // ioredis 6.0.0 can leave a Cluster that disconnects to reconnect 'disconnecting' for good,
  // when a redirection (MOVED) of a command in flight re-adds a node to the pool it empties
  // (finding F11: a member that never renewed again after a failover, about one run in ten of
  // the Cluster scenarios). The race is not reproducible on demand; the library's answer is to
  // never reconnect a lease Cluster in place.
  it('is replaced by a new client when reset, and the old one is closed', async () => {
    const cluster = await startCluster();
    topologies.push(cluster);
    const client = new Cluster(cluster.startupNodes);
    client.on('error', () => undefined);
    clients.push(client);
    const link = await acquireLink(client, 100, 5000);
    try {
      const key = `{${uniqueGroup('reset')}}:k`;
      await link.lease.set(key, 'before');
      const old = link.lease;
      link.resetLease();
      expect(link.lease).not.toBe(old);
      await waitFor(
        async () => (await link.lease.get(key).catch(() => undefined)) === 'before',
        () => `the new lease connection to serve (status ${link.lease.status})`,
        5000,
      );
      await waitFor(
        () => old.status === 'close' || old.status === 'end',
        () => `the old lease connection to close (status ${old.status})`,
        5000,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(['close', 'end']).toContain(old.status); // closed for good, not reconnecting
    } finally {
      link.release();
    }
  });
});

describe('Redis Sentinel', () => {
  it('follows the master through a Sentinel failover, never with two active', async () => {
    const set = await startSentinelSet();
    topologies.push(set);
    const redis = { sentinels: set.sentinelAddresses, name: set.masterName };
    const group = uniqueGroup('sentinel');
    const timeline = new Timeline();
    const members = await joinPair(group, redis, timeline);
    await waitFor(() => activeIds(members).join() === 'high', 'high active', A * 2);
    const epochBefore = members[0]?.epoch ?? 0;

    const master = await set.master();
    await master.kill('SIGKILL');
    await set.waitForFailover(master);
    await waitFor(() => activeIds(members).join() === 'high', 'high active after the failover', A + H + 8000);
    await new Promise((resolve) => setTimeout(resolve, H * 5));
    expect(activeIds(members)).toEqual(['high']);
    expect(members[0]?.epoch ?? 0).toBeGreaterThanOrEqual(epochBefore);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});

describe("durability 'replicated'", () => {
  it('delivers activate only after a replica has the grant, and measures what that costs', async () => {
    const set = await startSentinelSet();
    topologies.push(set);
    const redis = { sentinels: set.sentinelAddresses, name: set.masterName };
    const master = await set.master();
    const replica = new Redis(set.servers.find((s) => s !== master)?.url ?? '');
    replica.on('error', () => undefined);
    const onReplica: string[] = [];
    const handover = async (durability: 'async' | 'replicated') => {
      const group = uniqueGroup(durability);
      const first = await join({ group, memberId: 'first', weight: 20, redis, ...intervals, durability });
      const second = await join({
        group,
        memberId: 'second',
        weight: 10,
        redis,
        ...intervals,
        durability,
        // What a replica holds when the activation is delivered.
        onActivate: async ({ epoch }) => {
          const slots = Object.values(await replica.hgetall(groupKeys(group).slots));
          onReplica.push(`${durability}:${slots.some((s) => s.includes(`"e":"${epoch}"`))}`);
        },
      });
      await waitFor(() => first.isActive(), 'first active', A * 2);
      const started = performance.now();
      await first.leave();
      await waitFor(() => second.isActive(), 'second active', A);
      return performance.now() - started;
    };
    const asyncMs = await handover('async');
    const replicatedMs = await handover('replicated');
    await waitFor(() => onReplica.length === 2, 'both activations to have looked at the replica');
    await new Promise((resolve) => setTimeout(resolve, H * 3));
    replica.disconnect();
    console.log(`graceful handover: async ${asyncMs.toFixed(1)} ms, replicated ${replicatedMs.toFixed(1)} ms`);
    // Each activation delivered once; the replicated one only when the replica had its grant.
    expect(onReplica).toHaveLength(2);
    expect(onReplica).toContain('replicated:true');
    expect(replicatedMs).toBeLessThan(A);
  });

  it('activates nobody while no replica acknowledges, and is refused with a Cluster client', async () => {
    // One replica, frozen: it acknowledges nothing. (A set without replicas takes no writes at
    // all: the test kit's servers need one replica to write, as understudy requires under Sentinel.)
    const lone = await startSentinelSet({ replicas: 1 });
    topologies.push(lone);
    await lone.servers[1]?.pause();
    const group = uniqueGroup('no-replica');
    const member = await join({
      group,
      memberId: 'lonely',
      weight: 10,
      redis: { sentinels: lone.sentinelAddresses, name: lone.masterName },
      heartbeatInterval: 50,
      activationInterval: 400,
      durability: 'replicated',
    });
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(member.isActive()).toBe(false);
    await expect(joinGroup({ redis: new Cluster([]), group, weight: 1, durability: 'replicated' })).rejects.toThrow(
      /durability = "replicated": is not available with Redis Cluster/,
    );
  });
});
