import type { Cluster, Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type ScriptExchange, startCluster, startRedis, tappedCluster, tappedRedis } from '../src/index.js';
import { parseNodes } from '../src/scenario/topology.js';

const clients: (Redis | Cluster)[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.disconnect();
});

/** A tap that records what it saw. */
function recorder() {
  const sent: bigint[] = [];
  const replies: ScriptExchange[] = [];
  const resent: bigint[] = [];
  return {
    sent,
    replies,
    resent,
    tap: {
      onSend: (t: bigint) => sent.push(t),
      onReply: (e: ScriptExchange) => replies.push(e),
      onResend: (first: bigint) => resent.push(first),
    },
  };
}

describe('the script tap', () => {
  it('sees the scripts of a single Redis client’s duplicates, and nothing else', async () => {
    const server = await startRedis();
    const { sent, replies, tap } = recorder();
    const client = tappedRedis(server.url, tap);
    const duplicate = client.duplicate();
    clients.push(client, duplicate);
    await duplicate.set('plain', 'x');
    expect(await duplicate.eval('return 7', 0)).toBe(7);
    expect(sent).toHaveLength(1);
    expect(replies.map((r) => r.reply)).toEqual([7]);
    expect(replies[0]?.sentAt).toBe(sent[0]);
    expect(replies[0]?.repliedAt).toBeGreaterThan(sent[0] ?? 0n);
  });

  it('sees a function call (FCALL) as a script, and not the FUNCTION LOAD before it', async () => {
    const server = await startRedis();
    const { sent, replies, tap } = recorder();
    const client = tappedRedis(server.url, tap);
    const duplicate = client.duplicate();
    clients.push(client, duplicate);
    await duplicate.call(
      'FUNCTION',
      'LOAD',
      "#!lua name=tap\nredis.register_function('tap_seven', function() return 7 end)",
    );
    expect(await duplicate.call('fcall', 'tap_seven', 0)).toBe(7);
    expect(sent).toHaveLength(1);
    expect(replies.map((r) => r.reply)).toEqual([7]);
  });

  it('reports a script that went through the offline queue as sent twice, and none without the queue', async () => {
    const server = await startRedis();
    const { sent, resent, tap } = recorder();
    const client = tappedRedis(server.url, tap);
    // Not connected yet: with the offline queue the request waits, and is handed over again once connected.
    const queued = client.duplicate({ enableOfflineQueue: true });
    const direct = client.duplicate({ enableOfflineQueue: false });
    clients.push(client, queued, direct);
    expect(await queued.eval('return 1', 0)).toBe(1);
    expect(resent).toEqual([sent[0]]);
    await direct.connect();
    expect(await direct.eval('return 2', 0)).toBe(2);
    expect(resent).toHaveLength(1);
  });

  it('sees the scripts of a Cluster client’s duplicates, once per request, with the final reply', async () => {
    const cluster = await startCluster();
    const { sent, replies, tap } = recorder();
    const client = tappedCluster(cluster.startupNodes.map((n) => `${n.host}:${n.port}`).join(','), tap);
    // The library duplicates the client with options of its own, as core's connections/settings.ts does.
    const duplicate = client.duplicate(undefined, { enableOfflineQueue: true });
    clients.push(client, duplicate);
    duplicate.on('error', () => undefined);
    // Keys of three slots: whichever node serves each, the tap sees every request once.
    for (const tag of ['a', 'b', 'c']) {
      expect(await duplicate.eval("return redis.call('SET', KEYS[1], 'v')", 1, `{${tag}}:k`)).toBe('OK');
    }
    expect(sent).toHaveLength(3);
    expect(replies.map((r) => r.reply)).toEqual(['OK', 'OK', 'OK']);
  });
});

describe('parseNodes', () => {
  it('reads host:port lists and names an address it cannot read', () => {
    expect(parseNodes('127.0.0.1:7000,localhost:7001')).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: 'localhost', port: 7001 },
    ]);
    expect(() => parseNodes('127.0.0.1:7000,nohost')).toThrow(/got "nohost"/);
    expect(() => parseNodes('h:70000')).toThrow(/got "h:70000"/);
  });
});
