// S5 on a Redis Cluster: the lease connection never sends a command after its caller saw it
// fail. ioredis 6's Cluster retries a command on CLUSTERDOWN, TRYAGAIN, MOVED and closed
// connections from its own timers, and nothing there asks whether the command timeout has
// rejected the call meanwhile: a renewal rejected at 81 ms ran on Redis 1.7 s later (finding
// F12-cluster-resend, docs/RELIABILITY.md). A late renewal or join re-adds a member that has
// left; a late set_weight lands after its caller gave up.
import { hrNow, type RedisCluster, startCluster } from '@understudy/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { acquireLink, type Link } from '../src/connections/pool.js';
import { uniqueGroup, waitFor } from './helpers.js';

const COMMAND_TIMEOUT = 80;
/** Longer than ioredis' default retries of one command: 16 redirections, 100 ms apart. */
const RETRIES_OVER = 2500;

/** Appends Redis's time (ms) to a list: a record of when, if ever, the command ran. */
const RECORD =
  "local t = redis.call('TIME') return redis.call('RPUSH', KEYS[1], t[1] * 1000 + math.floor(t[2] / 1000))";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let cluster: RedisCluster;
let client: Cluster;
let link: Link;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 0 });
  // The user's client, with ioredis' default retry settings: the library must not inherit them.
  client = new Cluster(cluster.startupNodes);
  client.on('error', () => undefined);
  link = await acquireLink(client, COMMAND_TIMEOUT, 5000);
}, 60_000);
afterAll(async () => {
  link?.release();
  client?.disconnect();
  await cluster?.stop();
});

async function serverMs(node: Redis): Promise<number> {
  const [s, us] = await node.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/** What ran: the Redis times at which the recording command ran, relative to `since`. */
async function ranAfter(node: Redis, key: string, since: number): Promise<number[]> {
  return (await node.lrange(key, 0, -1)).map((t) => Number(t) - since);
}

/** A list key on the shard of a fresh group, and a direct connection to the master that serves it. */
async function recorder(): Promise<{ key: string; slot: string; node: Redis }> {
  const key = `{${uniqueGroup('resend')}}:runs`;
  // Once this answers, the lease connection is up again (an earlier test closed it) and knows the slots.
  await waitFor(
    () =>
      link.lease.del(key).then(
        () => true,
        () => false,
      ),
    'the lease connection to answer',
  );
  const owner = await cluster.masterFor(key);
  const node = new Redis(owner.port, owner.host, {
    connectionName: 'test-observer',
  });
  const slot = String(await node.cluster('KEYSLOT', key));
  return { key, slot, node };
}

describe('the Cluster lease connection', () => {
  it('does not send a command again after its caller saw it fail on CLUSTERDOWN', async () => {
    const { key, slot, node } = await recorder();
    try {
      await node.cluster('DELSLOTS', Number(slot));
      const started = hrNow();
      await expect(link.lease.eval(RECORD, 1, key)).rejects.toThrow();
      expect(hrNow() - started).toBeLessThan(1000);
      const rejectedAt = await serverMs(node);
      await node.cluster('ADDSLOTS', Number(slot));
      await sleep(RETRIES_OVER);
      expect(await ranAfter(node, key, rejectedAt), 'ms after its caller saw it rejected').toEqual([]);
    } finally {
      await node.cluster('ADDSLOTS', Number(slot)).catch(() => undefined);
      node.disconnect();
    }
  });

  it('does not send a command again after its connection closed under it', async () => {
    const { key, node } = await recorder();
    try {
      // The master holds writes (they are neither run nor refused), the caller times out,
      // then the master drops the lease connection and runs writes again.
      await node.client('PAUSE', 5000, 'WRITE');
      const started = hrNow();
      await expect(link.lease.eval(RECORD, 1, key)).rejects.toThrow();
      expect(hrNow() - started).toBeLessThan(1000);
      const rejectedAt = await serverMs(node);
      const clients = String(await node.client('LIST'));
      const lease = /id=(\d+) .*name=understudy-lease/.exec(clients)?.[1];
      expect(lease, 'the lease connection to the master').toBeDefined();
      await node.client('KILL', 'ID', String(lease));
      await node.client('UNPAUSE');
      await sleep(RETRIES_OVER);
      expect(await ranAfter(node, key, rejectedAt), 'ms after its caller saw it rejected').toEqual([]);
    } finally {
      await node.client('UNPAUSE').catch(() => undefined);
      node.disconnect();
    }
  });

  it('does not follow a redirection that arrives after its caller saw the command time out', async () => {
    const { key, slot, node } = await recorder();
    const owner = String(await node.cluster('MYID'));
    const next = (await cluster.topology()).find((n) => n.role === 'master' && n.id !== owner);
    if (!next) throw new Error('the cluster has a single master');
    const taker = new Redis(next.port, node.options.host ?? '127.0.0.1', { connectionName: 'test-observer' });
    try {
      // The master holds the write, the caller times out, the slot moves to another master,
      // and then the first one answers the held command: MOVED (it did not run there).
      await node.client('PAUSE', 5000, 'WRITE');
      await expect(link.lease.eval(RECORD, 1, key)).rejects.toThrow();
      const rejectedAt = await serverMs(node);
      await taker.cluster('SETSLOT', Number(slot), 'IMPORTING', owner);
      await node.cluster('SETSLOT', Number(slot), 'MIGRATING', next.id);
      await taker.cluster('SETSLOT', Number(slot), 'NODE', next.id);
      await node.cluster('SETSLOT', Number(slot), 'NODE', next.id);
      await node.client('UNPAUSE');
      await sleep(RETRIES_OVER);
      expect(await ranAfter(taker, key, rejectedAt), 'ms after its caller saw it rejected').toEqual([]);
    } finally {
      await node.client('UNPAUSE').catch(() => undefined);
      node.disconnect();
      taker.disconnect();
    }
  });
});
