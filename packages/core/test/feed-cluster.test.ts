// The group feed on a Redis Cluster: every command on the group's one hash slot.
import { type FeedMessage, publish } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisCluster, startCluster, uniqueGroup } from '@understudy/testkit';
import { Cluster } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { commitMessage } from '../src/feed/commit.js';
import { FeedReader } from '../src/feed/reader.js';
import { waitFor } from './helpers.js';

let cluster: RedisCluster;
let client: Cluster;
beforeAll(async () => {
  cluster = await startCluster({ masters: 3, replicasPerMaster: 0 });
  client = new Cluster(cluster.startupNodes);
}, 60_000);
afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

it('publishes, reads, replays and refuses a stale commit on a Cluster', async () => {
  const group = uniqueGroup('feed-cluster');
  const reader = await FeedReader.open({ redis: client, group, commandTimeout: 500, connectTimeout: 5000, block: 200 });
  try {
    const received: FeedMessage[] = [];
    await reader.start((m) => void received.push(m));
    const ids = [await publish({ redis: client, group }, 'one'), await publish({ redis: client, group }, { two: 2 })];
    await waitFor(() => received.length === 2, 'both messages', 5000);
    expect(received).toEqual([
      { id: ids[0], data: 'one' },
      { id: ids[1], data: { two: 2 } },
    ]);
    const replayed: string[] = [];
    await reader.replay(undefined, '+', (m) => void replayed.push(m.id));
    expect(replayed).toEqual(ids);
    expect(await reader.readCommit(0)).toBeUndefined();
    const request = { memberId: 'nobody', nonce: 'n', slot: 0, epoch: 1, id: ids[0] as string };
    expect(await commitMessage(client, groupKeys(group), request)).toEqual({ outcome: 'stale', reason: 'free' });
  } finally {
    await reader.stop();
  }
});
