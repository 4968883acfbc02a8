// A completion acknowledges its task, and completions trim the acknowledged tasks from the stream
// a whole node at a time (lua/queue/lib.lua `trim`): never a task still pending, and the depth
// counts only what is not completed; a renewal that still claims a task just completed does not
// take it back (its entry may still be in the stream). Only a renewal's reply names the next
// moment to reap (a completion's says -1: not read), and a completion that comes after its
// delivery expired is refused even when nothing reaped it yet. A stream that lost its consumer
// group gets it back, with a quarantine; a completion whose delivery record was lost, of a task
// still pending at its worker, is taken as that worker's (S6), not refused and left pending.
import { describeQueue, queueKeys } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { type Delivery, parseDelivery } from '../src/queue/inbox.js';
import type { QueueKeys } from '../src/queue/keys.js';
import { queueScripts } from '../src/scripts.js';
import { fileServer, popDelivery as popInbox, renewAsWorker, unfinishedTasks, uniqueGroup } from './helpers.js';

const { server, observer } = fileServer();

const renew = (
  keys: QueueKeys,
  workerId: string,
  weight: number,
  claims: { id: string; token: number; expires: number }[],
) => renewAsWorker(observer(), keys, { workerId, weight, claims, joining: claims.length === 0 });

const popDelivery = (keys: QueueKeys, workerId: string) => popInbox(observer(), keys, workerId);

/** `workerId`'s completion of `taskId` (the handler resolved), naming `token`; `inline`: the next delivery in its reply. */
const completeDone = (keys: QueueKeys, workerId: string, taskId: string, token: number, inline: boolean) =>
  queueScripts.complete(observer(), keys, { workerId, taskId, token, outcome: 'done', tokenFloor: 0, inline });

/** Completes `count` deliveries: `first`, then each next one a completion hands back in its reply; returns the last handed back. */
async function completeChain(keys: QueueKeys, workerId: string, first: Delivery, count: number): Promise<Delivery> {
  let delivery = first;
  for (let i = 0; i < count; i++) {
    const reply = await completeDone(keys, workerId, delivery.id, delivery.token, true);
    expect(reply.status).toBe('done');
    delivery = parseDelivery(Buffer.from(reply.next[0] ?? ''));
  }
  return delivery;
}

describe('the tasks stream', () => {
  it('loses acknowledged tasks by whole nodes, never one still pending, and the depth counts only tasks not completed', async () => {
    const queue = uniqueGroup('q-trim');
    const keys = queueKeys(queue);
    await renew(keys, 'holder', 2, []);
    const held = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'held' });
    const holding = await popDelivery(keys, 'holder');
    expect(holding.id).toBe(held);
    await renew(keys, 'runner', 1, []);
    for (let i = 0; i < 300; i++) await queueScripts.enqueue(observer(), keys, { dataType: 's', data: `t${i}` });
    const running = await completeChain(keys, 'runner', await popDelivery(keys, 'runner'), 260);
    // The oldest task pending holds back every trim: nothing went, the held task is readable.
    expect(await observer().xlen(keys.tasks)).toBe(301);
    expect(await observer().xrange(keys.tasks, held, held)).toHaveLength(1);
    // 40 not completed: one in flight at the runner, 39 unread; and the held one.
    expect(await unfinishedTasks(observer(), keys.tasks)).toBe(41);
    expect(await describeQueue({ redis: server().url, queue })).toMatchObject({ depth: 39, inFlight: 2 });
    // Completed, the held task no longer holds them back: the next trims drop whole nodes.
    const reply = await completeDone(keys, 'holder', held, holding.token, true);
    expect(reply.status).toBe('done');
    expect(await describeQueue({ redis: server().url, queue })).toMatchObject({ depth: 38, inFlight: 2 });
    await completeChain(keys, 'runner', running, 20);
    const length = await observer().xlen(keys.tasks);
    expect(length).toBeLessThan(301);
    // Nothing not completed was trimmed.
    const left = new Set((await observer().xrange(keys.tasks, '-', '+')).map(([id]) => id));
    for (const id of await observer().hkeys(keys.deliveries)) expect(left.has(id)).toBe(true);
    expect(await unfinishedTasks(observer(), keys.tasks)).toBe(20);
    expect(await describeQueue({ redis: server().url, queue })).toMatchObject({ depth: 18, inFlight: 2 });
  });

  it('is not taken back by a renewal that still claims a task its completion just acknowledged', async () => {
    const queue = uniqueGroup('q-trim-claim');
    const keys = queueKeys(queue);
    await renew(keys, 'w', 1, []);
    const id = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
    const delivery = await popDelivery(keys, 'w');
    const done = await completeDone(keys, 'w', id, delivery.token, true);
    expect(done.status).toBe('done');
    // The renewal was sent before the completion's reply came: it claims the task.
    const renewal = await renew(keys, 'w', 1, [{ id, token: delivery.token, expires: delivery.expires }]);
    expect(renewal.lost).toEqual([id]);
    expect(renewal.quarantineUntil).toBeLessThanOrEqual(renewal.serverNow);
    expect(await observer().hlen(keys.deliveries)).toBe(0);
    expect(await describeQueue({ redis: server().url, queue })).toMatchObject({ depth: 0, inFlight: 0 });
  });

  it("says Redis's time to the microsecond: serverNow in whole ms, and serverMicros past it", async () => {
    const keys = queueKeys(uniqueGroup('q-micros'));
    const micros = async () => {
      const [s, us] = await observer().time();
      return Number(s) * 1e6 + Number(us);
    };
    for (let i = 0; i < 5; i++) {
      const before = await micros();
      const renewal = await renew(keys, 'w', 1, []);
      const after = await micros();
      expect(Number.isInteger(renewal.serverMicros) && renewal.serverMicros >= 0 && renewal.serverMicros < 1000).toBe(
        true,
      );
      const read = renewal.serverNow * 1000 + renewal.serverMicros;
      expect(read).toBeGreaterThanOrEqual(before);
      expect(read).toBeLessThanOrEqual(after);
    }
  });

  it("leaves the moment to reap to the renewals: a completion's reply says -1, a renewal's the earliest expiry", async () => {
    const keys = queueKeys(uniqueGroup('q-reap-at'));
    await renew(keys, 'a', 2, []);
    await renew(keys, 'b', 1, []);
    const first = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
    const toA = await popDelivery(keys, 'a');
    await new Promise((resolve) => setTimeout(resolve, 5));
    await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'two' });
    const toB = await popDelivery(keys, 'b');
    expect(toB.expires).toBeGreaterThan(toA.expires);
    const done = await completeDone(keys, 'a', first, toA.token, false);
    expect(done.status).toBe('done');
    expect(done.reapAt).toBe(-1);
    const renewal = await renew(keys, 'b', 1, [{ id: toB.id, token: toB.token, expires: toB.expires }]);
    expect(renewal.reapAt).toBe(toB.expires);
  });

  it("says the earliest lease deadline after the renewal's own lease moved: the next one, its own, or a new one's", async () => {
    const keys = queueKeys(uniqueGroup('q-reap-lease'));
    const lease = async (workerId: string) => Number(await observer().zscore(keys.leases, workerId));
    const renewFor = (workerId: string, activationInterval: number, joining: boolean) =>
      renewAsWorker(observer(), keys, { workerId, weight: 1, claims: [], joining, activationInterval });
    // Alone: its own lease, moved later.
    expect((await renewFor('a', 600, true)).reapAt).toBe(await lease('a'));
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await renewFor('a', 600, false)).reapAt).toBe(await lease('a'));
    // New, ending after the earliest: that one stays the earliest.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await renewFor('b', 600, true)).reapAt).toBe(await lease('a'));
    // The earliest one's own renewal: the next one is the earliest now.
    await new Promise((resolve) => setTimeout(resolve, 5));
    expect((await renewFor('a', 600, false)).reapAt).toBe(await lease('b'));
    // New, with a shorter A: its own lease ends first.
    expect((await renewFor('c', 100, true)).reapAt).toBe(await lease('c'));
    // Not the earliest: unchanged.
    expect((await renewFor('b', 600, false)).reapAt).toBe(await lease('c'));
    expect(await observer().zrange(keys.leases, '0', '0')).toEqual(['c']);
  });

  it('refuses a completion that comes after its delivery expired, before anything reaped it, and hands the task on', async () => {
    const keys = queueKeys(uniqueGroup('q-expired'));
    const join = (workerId: string, weight: number) =>
      renewAsWorker(observer(), keys, { workerId, weight, claims: [], joining: true, completeTime: 50 });
    await join('slow', 2);
    const id = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
    const delivery = await popDelivery(keys, 'slow');
    await join('next', 1);
    await new Promise((resolve) => setTimeout(resolve, 120));
    const late = await completeDone(keys, 'slow', id, delivery.token, false);
    expect(late.status).toBe('stale');
    expect(late.serverNow).toBeGreaterThan(delivery.expires);
    expect(await popDelivery(keys, 'next')).toMatchObject({ id, deliveries: 2 });
  });

  it("gives nothing to a worker whose lease lapsed: the completion that meets it has the lapsed workers' tasks go back first", async () => {
    const keys = queueKeys(uniqueGroup('q-lapsed-place'));
    const join = (workerId: string, weight: number, capacity: number, activationInterval: number) =>
      queueScripts.renew(observer(), keys, {
        workerId,
        weight,
        capacity,
        completeTime: 30_000,
        maxDeliveries: 5,
        activationInterval,
        nonce: 'n',
        host: 'h',
        pid: 1,
        tokenFloor: 0,
        joining: true,
        claims: [],
      });
    await join('long', 1, 1, 60_000);
    const first = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
    const toLong = await popDelivery(keys, 'long');
    await join('short', 2, 2, 150);
    const second = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'two' });
    const toShort = await popDelivery(keys, 'short');
    expect([toLong.id, toShort.id]).toEqual([first, second]);
    // Not dispatched yet (as one enqueued during a quarantine): the next dispatch reads it.
    await observer().xadd(keys.tasks, '*', 't', 's', 'd', 'three');
    await new Promise((resolve) => setTimeout(resolve, 200));
    // `short` has room and is the heaviest, but its lease lapsed and nothing reaped it yet.
    const done = await completeDone(keys, 'long', first, toLong.token, true);
    expect(done.status).toBe('done');
    expect(done.next.map((d) => parseDelivery(Buffer.from(d))).map((d) => [d.id, d.deliveries])).toEqual([[second, 2]]);
    expect(await observer().hexists(keys.workers, 'short')).toBe(0);
    expect(await observer().llen(keys.inbox('short'))).toBe(0);
    expect(await describeQueue({ redis: server().url, queue: keys.queue })).toMatchObject({ depth: 1, inFlight: 1 });
  });

  it('takes the late completion of a worker whose lease lapsed while nothing reaped it, and gives it nothing more', async () => {
    const keys = queueKeys(uniqueGroup('q-lapsed-spare'));
    await renewAsWorker(observer(), keys, {
      workerId: 'gone',
      weight: 2,
      claims: [],
      joining: true,
      activationInterval: 150,
    });
    await renewAsWorker(observer(), keys, { workerId: 'busy', weight: 1, claims: [], joining: true });
    const first = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
    await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'two' });
    const toGone = await popDelivery(keys, 'gone');
    await popDelivery(keys, 'busy');
    await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'three' });
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Nobody else was given the task: its completion is taken; the worker gets no next task, and goes.
    const done = await completeDone(keys, 'gone', first, toGone.token, true);
    expect(done).toMatchObject({ status: 'done', next: [] });
    expect(await observer().hexists(keys.workers, 'gone')).toBe(0);
    expect(await describeQueue({ redis: server().url, queue: keys.queue })).toMatchObject({ depth: 1, inFlight: 1 });
  });

  it('gives a stream that lost its consumer group the group back, with a quarantine, when an enqueue dispatches', async () => {
    const keys = queueKeys(uniqueGroup('q-nogroup'));
    await renew(keys, 'busy', 2, []);
    await renew(keys, 'free', 1, []);
    await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
    await popDelivery(keys, 'busy');
    // Deleted and written again by hand: the stream is back, its group is not.
    await observer().del(keys.tasks);
    await observer().xadd(keys.tasks, '*', 't', 's', 'd', 'by hand');
    const id = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'two' });
    expect(id).toMatch(/^\d+-\d+$/);
    expect(await observer().hget(keys.config, 'quarantineReason')).toBe('lost-state:tasks');
    const groups = (await observer().xinfo('GROUPS', keys.tasks)) as unknown[][];
    expect(groups.map((g) => g[1])).toEqual(['workers']);
  });

  it("takes the completion of a task whose delivery record was lost as its worker's, the task being pending at that worker", async () => {
    for (const outcome of ['done', 'failed'] as const) {
      const keys = queueKeys(uniqueGroup(`q-lost-record-${outcome}`));
      await renew(keys, 'holder', 1, []);
      const id = await queueScripts.enqueue(observer(), keys, { dataType: 's', data: 'one' });
      const delivery = await popDelivery(keys, 'holder');
      await observer().del(keys.deliveries);
      const reply = await queueScripts.complete(observer(), keys, {
        workerId: 'holder',
        taskId: id,
        token: delivery.token,
        outcome,
        tokenFloor: delivery.token,
        inline: false,
      });
      expect(reply.status).toBe(outcome === 'done' ? 'done' : 'retry');
      expect(reply.quarantineReason).toMatch(/^lost-state:/);
      // Not left pending at the worker (where nothing would ever hand it on): completed, or waiting.
      const pendingAtHolder = (await observer().xpending(keys.tasks, 'workers', '-', '+', 10, 'w:holder')) as unknown[];
      expect(pendingAtHolder).toEqual([]);
      const waiting = (await observer().xpending(keys.tasks, 'workers', '-', '+', 10, 'waiting')) as unknown[][];
      expect(waiting.map((p) => p[0])).toEqual(outcome === 'done' ? [] : [id]);
    }
  });
});
