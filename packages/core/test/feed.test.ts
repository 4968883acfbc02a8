// The group feed, phase 1 (DESIGN §10): publish, the data kinds, and the feed reader.
import { ConfigError, CorruptStateError, type FeedMessage, publish } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { describe, expect, it } from 'vitest';
import type { FeedGap, FeedReaderOptions } from '../src/feed/reader.js';
import { feedReaderFactory, fileServer, uniqueGroup, waitFor } from './helpers.js';

const { server, observer } = fileServer();

const openReader = feedReaderFactory(server);

/** A started reader and what it delivered. */
async function listen(group: string, options: Partial<FeedReaderOptions> = {}) {
  const received: FeedMessage[] = [];
  const reader = await openReader(group, options);
  const start = await reader.start((m) => {
    received.push(m);
  });
  return { reader, received, start };
}

/** The feed reader's connections on the server. */
async function feedConnections(): Promise<string[]> {
  return (await server().admin('CLIENT', 'LIST')).split('\n').filter((line) => line.includes('name=understudy-feed'));
}

describe('publish', () => {
  it('appends to the group feed in publish order and returns each id', async () => {
    const group = uniqueGroup('feed-order');
    const ids: string[] = [];
    for (let i = 0; i < 20; i += 1) ids.push(await publish({ redis: observer(), group }, `m${i}`));
    const entries = await observer().xrange(groupKeys(group).feed, '-', '+');
    expect(entries.map(([id]) => id)).toEqual(ids);
    expect(entries.map(([, fields]) => fields[1])).toEqual(ids.map((_, i) => `m${i}`));
  });

  it('publishes through a URL on a connection of its own, closed afterwards', async () => {
    const group = uniqueGroup('feed-url');
    const id = await publish({ redis: server().url, group }, { order: 1 });
    expect(await observer().xrange(groupKeys(group).feed, '-', '+')).toEqual([[id, ['j', '{"order":1}']]]);
    await waitFor(
      async () => !(await server().admin('CLIENT', 'LIST')).includes('name=understudy-admin'),
      'the publish connection to close',
    );
  });

  it('refuses data that would not come back the same, and bad options, naming the field', async () => {
    const group = uniqueGroup('feed-refuse');
    const redis = observer();
    const bad: [unknown, RegExp][] = [
      [undefined, /data = "undefined"/],
      [() => 1, /data = "function"/],
      [Symbol('s'), /data = "symbol"/],
      [10n, /data = "bigint".*BigInt/],
      [Number.NaN, /data = NaN: a number must be finite/],
      ['\ud800 alone', /well-formed/],
    ];
    for (const [data, message] of bad) {
      const error = await publish({ redis, group }, data).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as ConfigError).message).toMatch(message);
    }
    await expect(publish({ redis, group: 'a:b' }, 'x')).rejects.toMatchObject({ field: 'group' });
    await expect(publish({ redis, group, feedMaxLength: 0 }, 'x')).rejects.toMatchObject({ field: 'feedMaxLength' });
    await expect(publish({ redis, group, prefix: 'a b' }, 'x')).rejects.toMatchObject({ field: 'prefix' });
    expect(await redis.exists(groupKeys(group).feed)).toBe(0);
  });

  it('says CorruptStateError when the feed key holds something else than a stream', async () => {
    const group = uniqueGroup('feed-wrongtype');
    await observer().set(groupKeys(group).feed, 'not a stream');
    const error = await publish({ redis: observer(), group }, 'x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CorruptStateError);
    expect(error).toMatchObject({ key: groupKeys(group).feed });
  });
});

describe('every data kind', () => {
  it('comes back as the kind it was published as: text, bytes, JSON values', async () => {
    const group = uniqueGroup('feed-kinds');
    const { received } = await listen(group);
    const bytes = Buffer.from([0, 1, 127, 128, 255, 0x0d, 0x0a]);
    const sent: unknown[] = [
      'plain',
      '',
      'ünïcødé 🎭 and \r\n',
      '{"looks":"like json"}',
      bytes,
      Buffer.alloc(0),
      new Uint8Array([9, 8, 7]),
      42,
      -0.5,
      true,
      false,
      null,
      [1, 'two', { three: [3] }],
      { nested: { list: [null, true, 1.5, 'x'] } },
    ];
    for (const data of sent) await publish({ redis: observer(), group }, data);
    await waitFor(() => received.length === sent.length, 'every message');
    const data = received.map((m) => m.data);
    expect(data.slice(0, 4)).toEqual(sent.slice(0, 4));
    for (const [i, expected] of [
      [4, bytes],
      [5, Buffer.alloc(0)],
      [6, Buffer.from([9, 8, 7])],
    ] as const) {
      expect(Buffer.isBuffer(data[i])).toBe(true);
      expect((data[i] as Buffer).equals(expected)).toBe(true);
    }
    expect(data.slice(7)).toEqual(sent.slice(7));
  });
});

describe('the feed reader', () => {
  it('delivers every message published after it started, in order, and none from before', async () => {
    const group = uniqueGroup('feed-live');
    const before = await publish({ redis: observer(), group }, 'before');
    const { received, start, reader } = await listen(group);
    expect(start).toBe(before);
    const ids: string[] = [];
    for (let i = 0; i < 250; i += 1) ids.push(await publish({ redis: observer(), group }, i));
    await waitFor(() => received.length === ids.length, 'every message');
    expect(received.map((m) => m.id)).toEqual(ids);
    expect(received.map((m) => m.data)).toEqual(ids.map((_, i) => i));
    await waitFor(() => reader.position === ids.at(-1), 'the position to reach the last message');
  });

  it('starts at the beginning of a feed that does not exist yet', async () => {
    const group = uniqueGroup('feed-empty');
    const { received, start } = await listen(group);
    expect(start).toBe('0-0');
    const id = await publish({ redis: observer(), group }, 'first');
    await waitFor(() => received.length === 1, 'the first message');
    expect(received[0]).toEqual({ id, data: 'first' });
  });

  it('delivers one message at a time: the next waits until deliver has settled', async () => {
    const group = uniqueGroup('feed-serial');
    const reader = await openReader(group);
    let running = 0;
    let most = 0;
    const done: string[] = [];
    await reader.start(async (m) => {
      running += 1;
      most = Math.max(most, running);
      await new Promise((resolve) => setTimeout(resolve, 5));
      running -= 1;
      done.push(m.id);
    });
    await Promise.all(Array.from({ length: 20 }, (_, i) => publish({ redis: observer(), group }, i)));
    await waitFor(() => done.length === 20, 'every message');
    expect(most).toBe(1);
  });

  it('stops at once while blocked, leaving no connection behind, and delivers nothing after', async () => {
    const group = uniqueGroup('feed-stop');
    const { reader, received } = await listen(group, { block: 5000, commandTimeout: 200 });
    expect((await feedConnections()).length).toBe(2);
    await waitFor(async () => (await feedConnections()).some((c) => c.includes('cmd=xread')), 'the read to block');
    const started = performance.now();
    await reader.stop();
    expect(performance.now() - started).toBeLessThan(1000);
    await waitFor(async () => (await feedConnections()).length === 0, 'the reader connections to close');
    await publish({ redis: observer(), group }, 'late');
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(received).toEqual([]);
  });

  it('reports an entry understudy did not write as CorruptStateError and goes on with the next', async () => {
    const group = uniqueGroup('feed-foreign');
    const errors: Error[] = [];
    const { received } = await listen(group, { onError: (e) => errors.push(e) });
    await observer().xadd(groupKeys(group).feed, '*', 'who', 'someone else');
    const id = await publish({ redis: observer(), group }, 'ours');
    await waitFor(() => received.length === 1, 'the next message');
    expect(received[0]).toEqual({ id, data: 'ours' });
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(CorruptStateError);
    expect(errors[0]?.message).toMatch(/is not a message understudy wrote/);
  });

  it('reads again after Redis dropped its connection, from where it was', async () => {
    const group = uniqueGroup('feed-reconnect');
    const { received } = await listen(group);
    const first = await publish({ redis: observer(), group }, 1);
    await waitFor(() => received.length === 1, 'the first message');
    for (const line of await feedConnections()) {
      await server().admin('CLIENT', 'KILL', 'ID', /\bid=(\d+)/.exec(line)?.[1] as string);
    }
    await waitFor(async () => (await feedConnections()).length === 2, 'the reader to reconnect', 5000);
    const second = await publish({ redis: observer(), group }, 2);
    await waitFor(() => received.length === 2, 'the message after the reconnect', 5000);
    expect(received.map((m) => m.id)).toEqual([first, second]);
  });

  it('reports no gap when only messages it has seen were trimmed', async () => {
    const group = uniqueGroup('feed-no-gap');
    const gaps: FeedGap[] = [];
    const { received } = await listen(group, { onGap: (g) => gaps.push(g) });
    const ids: string[] = [];
    for (let i = 0; i < 5; i += 1) ids.push(await publish({ redis: observer(), group }, i));
    await waitFor(() => received.length === 5, 'five messages');
    await observer().xtrim(groupKeys(group).feed, 'MAXLEN', 0);
    // The read that waits for the sixth message counted before the trim; the seventh's counts after it.
    for (const i of [5, 6]) ids.push(await publish({ redis: observer(), group }, i));
    await waitFor(() => received.length === 7, 'two more messages');
    expect(received.map((m) => m.id)).toEqual(ids);
    expect(gaps).toEqual([]);
  });

  it('reports a feed that lost its messages (S6) once, as reason reset, and reads what comes next', async () => {
    const group = uniqueGroup('feed-reset');
    const gaps: FeedGap[] = [];
    const { received } = await listen(group, { onGap: (g) => gaps.push(g) });
    const first = await publish({ redis: observer(), group }, 1);
    await waitFor(() => received.length === 1, 'the first message');
    await observer().del(groupKeys(group).feed);
    await waitFor(() => gaps.length > 0, 'the reset to be reported');
    await new Promise((resolve) => setTimeout(resolve, 500)); // a few more reads: reported once
    const second = await publish({ redis: observer(), group }, 2);
    await waitFor(() => received.length === 2, 'the message after the loss');
    expect(received.map((m) => m.id)).toEqual([first, second]);
    expect(gaps).toEqual([{ after: first, reason: 'reset' }]);
  });
});
