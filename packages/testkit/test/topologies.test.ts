import { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { startCluster, startSentinelSet } from '../src/index.js';

const clients: (Redis | Cluster)[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

async function replicationOffset(port: number, field: string): Promise<number> {
  const node = new Redis({ host: '127.0.0.1', port, lazyConnect: true });
  try {
    await node.connect();
    return Number(new RegExp(`${field}:(\\d+)`).exec(await node.info('replication'))?.[1] ?? -1);
  } finally {
    node.disconnect();
  }
}

describe('startCluster', () => {
  it('serves every slot, and a replica takes over when a master is SIGKILLed', async () => {
    const cluster = await startCluster();
    expect(cluster.nodes).toHaveLength(6);
    const client = new Cluster(cluster.startupNodes, { redisOptions: { maxRetriesPerRequest: 1 } });
    client.on('error', () => undefined);
    clients.push(client);
    await client.set('{orders}:probe', 'before');
    // Gossip may take a moment to tell every node who replicates whom.
    const roles = async () => (await cluster.topology()).map((n) => n.role).sort();
    await expect
      .poll(roles, { timeout: 5000 })
      .toEqual(['master', 'master', 'master', 'replica', 'replica', 'replica']);
    const topology = await cluster.topology();

    const owner = await cluster.masterFor('{orders}:probe');
    const replica = topology.find((n) => n.masterId === topology.find((m) => m.port === owner.port)?.id);
    // Replication is asynchronous: kill the master only once its replica has the write.
    const written = await replicationOffset(owner.port, 'master_repl_offset');
    await expect
      .poll(() => replicationOffset(replica?.port ?? 0, 'slave_repl_offset'), { timeout: 5000 })
      .toBeGreaterThanOrEqual(written);
    await owner.kill('SIGKILL');
    await cluster.waitUntilHealthy();
    const promoted = await cluster.masterFor('{orders}:probe');
    expect(promoted.port).toBe(replica?.port);
    expect(await client.get('{orders}:probe')).toBe('before');
  });
});

describe('startSentinelSet', () => {
  it('follows the master through a failover after SIGKILL', async () => {
    const set = await startSentinelSet();
    expect(set.servers).toHaveLength(3);
    expect(set.sentinels).toHaveLength(3);
    const client = new Redis({ sentinels: set.sentinelAddresses, name: set.masterName, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    clients.push(client);
    await client.set('probe', 'before');
    await client.wait(2, 1000);
    const master = await set.master();
    await master.kill('SIGKILL');
    const promoted = await set.waitForFailover(master);
    expect(promoted).not.toBe(master);
    expect(set.servers).toContain(promoted);
    await expect.poll(() => client.get('probe').catch(() => undefined), { timeout: 10_000 }).toBe('before');
  });
});
