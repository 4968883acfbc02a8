import { setTimeout as sleep } from 'node:timers/promises';
import { Redis, type RedisOptions } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { liveServerCount, type RedisQuorum, redisInfo, startRedisQuorum, stopAllRedis } from '../src/index.js';

const clients: Redis[] = [];
const quorums: RedisQuorum[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(quorums.splice(0).map((q) => q.stop()));
});

function connect(url: string, options: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 0, retryStrategy: () => null, ...options });
  client.on('error', () => undefined);
  clients.push(client);
  return client;
}

async function quorum(count: number, proxied = false): Promise<RedisQuorum> {
  const q = await startRedisQuorum({ count, proxied });
  quorums.push(q);
  return q;
}

/** PING each server at its URL: true where it answered within 300 ms. */
async function answering(urls: readonly string[]): Promise<boolean[]> {
  return Promise.all(
    urls.map((url) =>
      connect(url, { commandTimeout: 300, connectTimeout: 300 })
        .ping()
        .then(
          () => true,
          () => false,
        ),
    ),
  );
}

async function roundTripMs(client: Redis): Promise<number> {
  const start = performance.now();
  await client.ping();
  return performance.now() - start;
}

describe('startRedisQuorum', () => {
  it('starts K independent masters on distinct ports: a write on one is on no other', async () => {
    const q = await quorum(5);
    expect(q.count).toBe(5);
    expect(q.majority).toBe(3);
    expect(new Set(q.servers.map((s) => s.port)).size).toBe(5);
    expect(q.urls).toEqual(q.directUrls);
    expect(q.links).toEqual([]);
    for (const server of q.servers) {
      const replication = await redisInfo(server.port, 'replication');
      expect(replication.get('role')).toBe('master');
      expect(replication.get('connected_slaves')).toBe('0');
    }
    await connect(q.urls[0] as string).set('only-here', '1');
    await sleep(50);
    const seen = await Promise.all(q.urls.map((url) => connect(url).exists('only-here')));
    expect(seen).toEqual([1, 0, 0, 0, 0]);
  });

  it('puts each server behind a proxy of its own with proxied', async () => {
    const q = await quorum(3, true);
    expect(q.links).toHaveLength(3);
    q.urls.forEach((url, i) => {
      expect(url).toBe(`redis://127.0.0.1:${q.link(i).port}`);
      expect(q.link(i).target.port).toBe(q.server(i).port);
    });
    expect(await answering(q.urls)).toEqual([true, true, true]);
    expect(q.links.map((l) => l.connectionCount)).toEqual([1, 1, 1]);
  });

  it('refuses a count outside 3–7, naming it', async () => {
    for (const count of [2, 8, 3.5, 0]) {
      await expect(startRedisQuorum({ count })).rejects.toThrow(`3 to 7 independent servers, got count ${count}`);
    }
  });

  it('stops every server and proxy with stop(), and the suite’s cleanup stops a quorum a test forgot', async () => {
    const before = liveServerCount();
    const q = await startRedisQuorum({ count: 3, proxied: true });
    expect(liveServerCount()).toBe(before + 6);
    const pids = q.servers.map((s) => s.pid as number);
    // What the setup file's afterAll runs when a test failed before its own cleanup.
    await stopAllRedis();
    expect(liveServerCount()).toBe(0);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
    expect(q.servers.every((s) => !s.running)).toBe(true);
    expect(await answering(q.urls)).toEqual([false, false, false]);
  });
});

describe('RedisQuorum faults', () => {
  it('kills, pauses and resumes one server while the others answer', async () => {
    const q = await quorum(3);
    await q.kill(1);
    expect(q.server(1).running).toBe(false);
    expect(await answering(q.urls)).toEqual([true, false, true]);
    await q.pause(2);
    expect(q.server(2).paused).toBe(true);
    expect(await answering(q.urls)).toEqual([true, false, false]);
    await q.resume(2);
    expect(await answering(q.urls)).toEqual([true, false, true]);
    expect(() => q.server(3)).toThrow('from 0 to 2, got 3');
  });

  it('restarts one server empty on the same port; the others keep their keys', async () => {
    const q = await quorum(3);
    await Promise.all(q.urls.map((url) => connect(url).set('kept', 'yes')));
    const port = q.server(0).port;
    const pid = q.server(0).pid;
    await q.restartEmpty(0);
    expect(q.server(0).port).toBe(port);
    expect(q.server(0).pid).not.toBe(pid);
    const kept = await Promise.all(q.urls.map((url) => connect(url).get('kept')));
    expect(kept).toEqual([null, 'yes', 'yes']);
  });

  it('restarts a majority empty, all down before any is back; the minority keeps its keys', async () => {
    const q = await quorum(5);
    await Promise.all(q.urls.map((url) => connect(url).set('kept', 'yes')));
    const starts = await Promise.all(q.servers.map(async (s) => (await redisInfo(s.port, 'server')).get('run_id')));
    expect(await q.restartMajorityEmpty([4, 1, 2])).toEqual([4, 1, 2]);
    const kept = await Promise.all(q.urls.map((url) => connect(url).get('kept')));
    expect(kept).toEqual(['yes', null, null, 'yes', null]);
    const after = await Promise.all(q.servers.map(async (s) => (await redisInfo(s.port, 'server')).get('run_id')));
    expect(after.map((id, i) => id !== starts[i])).toEqual([false, true, true, false, true]);
    await q.restartMajorityEmpty();
    expect(await Promise.all(q.urls.map((url) => connect(url).get('kept')))).toEqual([null, null, null, 'yes', null]);
    expect(() => q.majorityIndexes([0, 0, 1])).toThrow('a majority of 5 servers is 3 distinct indexes, got [0, 0, 1]');
  });

  it('slows one link among fast ones', async () => {
    const q = await quorum(3, true);
    const clientsOf = q.urls.map((url) => connect(url));
    await Promise.all(clientsOf.map((c) => c.ping()));
    q.slowLink(1, 40, 5);
    const times = [] as number[];
    for (const client of clientsOf) times.push(await roundTripMs(client));
    expect(times[1]).toBeGreaterThanOrEqual(2 * 35 - 1);
    expect(times[0]).toBeLessThan(35);
    expect(times[2]).toBeLessThan(35);
    q.healLink(1);
    expect(await roundTripMs(clientsOf[1] as Redis)).toBeLessThan(35);
  });

  it('blackholes one direction of one link, and heals it with fresh connections', async () => {
    const q = await quorum(3, true);
    const writer = connect(q.urls[2] as string, { commandTimeout: 300 });
    await writer.ping();
    q.blackholeLink(2, 'to-client');
    await expect(writer.set('one-way', 'ran')).rejects.toThrow(/timed out/i);
    // The command reached the server; its reply did not come back.
    expect(await connect(q.directUrls[2] as string).get('one-way')).toBe('ran');
    expect(await answering(q.urls)).toEqual([true, true, false]);
    q.healLink(2);
    expect(q.link(2).blackholed).toBe(false);
    expect(await answering(q.urls)).toEqual([true, true, true]);
  });

  it('healAll resumes, restarts the dead empty and heals every link', async () => {
    const q = await quorum(3, true);
    await q.kill(0);
    await q.pause(1);
    q.blackholeLink(2);
    expect(await answering(q.urls)).toEqual([false, false, false]);
    await q.healAll();
    expect(await answering(q.urls)).toEqual([true, true, true]);
  });
});
