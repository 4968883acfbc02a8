import { joinGroup, type Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { uniqueGroup, waitFor } from '@understudy/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { openSubscriber } from '../src/connections/settings.js';
import { type Heard, Subscriber } from '../src/connections/subscriber.js';
import { fileServer } from './helpers.js';

// Per-process fan-out: one subscription per channel, and each message handed to every listener
// of the process as one Heard, parsed at most once for all of them.

const { server, observer } = fileServer();
const subscribers: Subscriber[] = [];
const members: Member[] = [];
afterAll(async () => {
  await Promise.allSettled(members.map((m) => m.leave()));
  for (const s of subscribers) s.connection.disconnect();
});

async function subscriber(): Promise<Subscriber> {
  const s = new Subscriber(openSubscriber(server().url)); // before connecting, as the pool does: it counts 'ready'
  subscribers.push(s);
  await s.connection.connect();
  return s;
}

const shardSubscribers = async (channel: string) =>
  Number(((await observer().call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number])[1]);

describe('the shared subscriber', () => {
  it('hands one parsed announcement, changes indexed by member, to every listener of the channel', async () => {
    const s = await subscriber();
    const channel = groupKeys(uniqueGroup('fan')).events;
    const heard: Heard[][] = [[], [], []];
    const listeners = heard.map((into) => (message: Heard) => void into.push(message));
    await Promise.all(listeners.map((listener) => s.subscribe(channel, listener, () => undefined, 1000)));
    expect(await shardSubscribers(channel)).toBe(1);

    await observer().spublish(channel, JSON.stringify({ i: 7, v: 3, c: [['m1', 'active', 4, 0, 'initial']] }));
    await waitFor(() => heard.every((into) => into.length === 1), 'every listener to hear the message');
    const [first] = heard[0] as Heard[];
    for (const into of heard) expect(into[0]).toBe(first);
    const announcement = first?.announcement;
    expect(announcement).toMatchObject({ incarnation: 7, version: 3 });
    expect(announcement?.changes.get('m1')).toEqual({ role: 'active', epoch: 4, slot: 0, reason: 'initial' });
    expect(announcement?.changes.has('m2')).toBe(false);
    expect(heard[1]?.[0]?.announcement).toBe(announcement); // parsed once, not once per listener

    await observer().spublish(channel, JSON.stringify({ i: 7, v: 4, c: [5] }));
    await waitFor(() => heard.every((into) => into.length === 2), 'every listener to hear the garbled message');
    expect(heard[0]?.[1]?.announcement).toBeUndefined();
  });

  it('drops one listener on unsubscribe, and the subscription with the last', async () => {
    const s = await subscriber();
    const channel = groupKeys(uniqueGroup('fan')).events;
    const a: Heard[] = [];
    const b: Heard[] = [];
    const [onA, onB] = [(m: Heard) => void a.push(m), (m: Heard) => void b.push(m)];
    const [resyncA, resyncB] = [() => undefined, () => undefined];
    await s.subscribe(channel, onA, resyncA, 1000);
    await s.subscribe(channel, onB, resyncB, 1000);
    s.unsubscribe(channel, onA, resyncA);
    await observer().spublish(channel, JSON.stringify({ i: 1, v: 1, c: [] }));
    await waitFor(() => b.length === 1, 'the remaining listener to hear the message');
    expect(a).toHaveLength(0);
    expect(await shardSubscribers(channel)).toBe(1);
    s.unsubscribe(channel, onB, resyncB);
    await waitFor(async () => (await shardSubscribers(channel)) === 0, 'the channel to be unsubscribed');
  });

  it('resubscribes after a reconnect and calls every resync listener', async () => {
    const s = await subscriber();
    const channel = groupKeys(uniqueGroup('fan')).events;
    const resynced: number[] = [];
    const heard: Heard[] = [];
    const id = String(await s.connection.call('CLIENT', 'ID')); // before: a subscribed connection takes no other command
    await s.subscribe(
      channel,
      (m) => void heard.push(m),
      () => resynced.push(0),
      1000,
    );
    await s.subscribe(
      channel,
      () => undefined,
      () => resynced.push(1),
      1000,
    );
    await observer().call('CLIENT', 'KILL', 'ID', id);
    await waitFor(() => resynced.length === 2, 'both resync listeners to be called');
    expect(resynced.sort()).toEqual([0, 1]);
    await waitFor(async () => (await shardSubscribers(channel)) === 1, 'the channel to be subscribed again');
    await observer().spublish(channel, JSON.stringify({ i: 1, v: 1, c: [] }));
    await waitFor(() => heard.length === 1, 'the message after the reconnect');
  });
});

describe('many members of one group in one process', () => {
  it('each renews when an announcement names it, not when it names another', async () => {
    const group = uniqueGroup('fan');
    const keys = groupKeys(group);
    const options = { redis: server().url, group, heartbeatInterval: 5000, activationInterval: 15_000 };
    const crowd: Member[] = [];
    for (let i = 0; i < 30; i++) crowd.push(await joinGroup({ ...options, memberId: `m${i}`, weight: 1 }));
    members.push(...crowd);
    await new Promise((resolve) => setTimeout(resolve, 100)); // the last join's announcement was heard
    const renewed = new Set<string>();
    for (const m of crowd) m.on('renewal', () => renewed.add(m.id));
    const [created, version] = await observer().hmget(keys.config, 'createdAt', 'version');
    const named = ['m3', 'm17'];
    const changes = named.map((id) => [id, 'standby', 0, -1, '']);
    await observer().spublish(keys.events, JSON.stringify({ i: created, v: Number(version) + 1, c: changes }));
    await waitFor(() => named.every((id) => renewed.has(id)), 'the named members to renew');
    // H = 5 s: in these few hundred ms about one other member renews on its own schedule.
    const others = [...renewed].filter((id) => !named.includes(id));
    expect(others.length, `others renewed: ${others.join(', ')}`).toBeLessThan(8);
  });
});
