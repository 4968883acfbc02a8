// A completion hands the next task to its own worker in its reply, not through the inbox; a
// renewal sends it again when that reply was lost (lua/queue/lib.lua `dispatch`, `resend`), and
// the worker runs a delivery once however often it arrives. The worker a completion frees is
// weighed against the others with room (the SPARE) without taking a place first.
import { CorruptStateError, queueKeys } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { parseDelivery, RecentTokens } from '../src/queue/inbox.js';
import { queueScripts } from '../src/scripts.js';
import { completeAsWorker, fileServer, popDelivery, renewAsWorker, uniqueGroup } from './helpers.js';

const { observer } = fileServer();

describe('a delivery in a completion reply', () => {
  it('skips the inbox, and comes again in a renewal until the worker claims it', async () => {
    const keys = queueKeys(uniqueGroup('q-inline'));
    const c = observer();
    const renew = (claims: { id: string; token: number; expires: number }[], joining = false) =>
      renewAsWorker(c, keys, { workerId: 'ghost', claims, joining });
    await renew([], true);
    const first = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'one' });
    const pushed = await c.lpopBuffer(keys.inbox('ghost'));
    expect(pushed && parseDelivery(pushed)).toMatchObject({ id: first, data: 'one' });
    const second = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'two' });
    const done = await queueScripts.complete(c, keys, {
      workerId: 'ghost',
      taskId: first,
      token: pushed ? parseDelivery(pushed).token : 0,
      outcome: 'done',
      tokenFloor: 0,
      inline: true,
    });
    expect(done.status).toBe('done');
    expect(done.next).toHaveLength(1);
    const next = parseDelivery(Buffer.from(done.next[0] ?? ''));
    expect(next).toMatchObject({ id: second, deliveries: 1, data: 'two' });
    expect(await c.llen(keys.inbox('ghost'))).toBe(0);
    // That reply was lost: the worker claims nothing, and the renewal sends the delivery again.
    const again = await renew([]);
    expect(again.next.map((e) => parseDelivery(Buffer.from(e)))).toMatchObject([
      { id: second, token: next.token, expires: next.expires, data: 'two' },
    ]);
    // Claimed: not sent again.
    expect((await renew([{ id: second, token: next.token, expires: next.expires }])).next).toEqual([]);
  });

  it("stores the worker's record once, and reads the places once, when the completion that frees it hands it the next task", async () => {
    const keys = queueKeys(uniqueGroup('q-inline-once'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: true });
    const first = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'one' });
    const pushed = await c.lpopBuffer(keys.inbox('ghost'));
    await queueScripts.enqueue(c, keys, { dataType: 's', data: 'two' });
    const calls = async (command: string) =>
      Number(new RegExp(`cmdstat_${command}:calls=(\\d+)`).exec(await c.info('commandstats'))?.[1] ?? 0);
    const [hsets, zranges, zadds, zrems] = [
      await calls('hset'),
      await calls('zrange'),
      await calls('zadd'),
      await calls('zrem'),
    ];
    const done = await queueScripts.complete(c, keys, {
      workerId: 'ghost',
      taskId: first,
      token: pushed ? parseDelivery(pushed).token : 0,
      outcome: 'done',
      tokenFloor: 0,
      inline: true,
    });
    expect(done.next).toHaveLength(1);
    // The next task's delivery record, the config's token, and the worker's record: once.
    expect((await calls('hset')) - hsets).toBe(3);
    // The places once: the only one, filled, needs no second look. The worker was full, so it had
    // no place, and filled again it needs none: only the deadlines change (the completed task's
    // removed, the next one's added).
    expect((await calls('zrange')) - zranges).toBe(1);
    expect((await calls('zadd')) - zadds).toBe(1);
    expect((await calls('zrem')) - zrems).toBe(1);
  });

  it('is not used for bytes, which the reply would carry as text', async () => {
    const keys = queueKeys(uniqueGroup('q-inline-bytes'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: true });
    const first = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'one' });
    const pushed = await c.lpopBuffer(keys.inbox('ghost'));
    await queueScripts.enqueue(c, keys, { dataType: 'b', data: Buffer.from([0xff, 0x00, 0xfe]) });
    const token = pushed ? parseDelivery(pushed).token : 0;
    const done = await queueScripts.complete(c, keys, {
      workerId: 'ghost',
      taskId: first,
      token,
      outcome: 'done',
      tokenFloor: 0,
      inline: true,
    });
    expect(done.next).toEqual([]);
    const bytes = await c.lpopBuffer(keys.inbox('ghost'));
    expect(bytes && parseDelivery(bytes).data).toEqual(Buffer.from([0xff, 0x00, 0xfe]));
  });
});

describe('a completion that frees a full worker', () => {
  /**
   * Worker `completer` holds a task; worker `other`, with room, joined after; `waiting` tasks were
   * enqueued during a quarantine (written here) and wait until it ends. Then `completer` completes.
   */
  async function completeWhileOthersWait(weights: { completer: number; other: number }, waiting: number) {
    const keys = queueKeys(uniqueGroup('q-spare'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'completer', weight: weights.completer, claims: [], joining: true });
    const held = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'held' });
    const pushed = await c.lpopBuffer(keys.inbox('completer'));
    if (!pushed) throw new Error('the completer got no task');
    await renewAsWorker(c, keys, { workerId: 'other', weight: weights.other, claims: [], joining: true });
    const redisNow = async () => Number((await c.time())[0]) * 1000 + Math.floor(Number((await c.time())[1]) / 1000);
    const until = (await redisNow()) + 150;
    await c.hset(keys.config, 'quarantineUntil', String(until), 'quarantineReason', 'test');
    const tasks: string[] = [];
    for (let i = 0; i < waiting; i++) tasks.push(await queueScripts.enqueue(c, keys, { dataType: 's', data: `t${i}` }));
    expect(await c.llen(keys.inbox('other'))).toBe(0);
    while ((await redisNow()) <= until) await new Promise((resolve) => setTimeout(resolve, 20));
    const done = await queueScripts.complete(c, keys, {
      workerId: 'completer',
      taskId: held,
      token: parseDelivery(pushed).token,
      outcome: 'done',
      tokenFloor: 0,
      inline: true,
    });
    expect(done.status).toBe('done');
    const toOther = await c.lpopBuffer(keys.inbox('other'));
    return {
      tasks,
      toCompleter: done.next.map((e) => parseDelivery(Buffer.from(e)).id),
      toOther: toOther ? [parseDelivery(toOther).id] : [],
      places: await c.zrange(keys.order, '0', '-1'),
    };
  }

  it('gives it the first task when it is heavier than the worker with room, and the next to that one', async () => {
    const r = await completeWhileOthersWait({ completer: 5, other: 1 }, 2);
    expect(r.toCompleter).toEqual([r.tasks[0]]);
    expect(r.toOther).toEqual([r.tasks[1]]);
    expect(r.places).toEqual([]);
  });

  it('gives the first task to a heavier worker with room, the next to it, and places it when none is left', async () => {
    const both = await completeWhileOthersWait({ completer: 1, other: 5 }, 2);
    expect(both.toOther).toEqual([both.tasks[0]]);
    expect(both.toCompleter).toEqual([both.tasks[1]]);
    expect(both.places).toEqual([]);
    const one = await completeWhileOthersWait({ completer: 1, other: 5 }, 1);
    expect(one.toOther).toEqual([one.tasks[0]]);
    expect(one.toCompleter).toEqual([]);
    expect(one.places).toEqual(['completer']);
  });
});

describe('a task waiting for re-delivery', () => {
  it('goes to the worker a completion frees before any new task, the queue having marked that one waits', async () => {
    const keys = queueKeys(uniqueGroup('q-waiting'));
    const c = observer();
    const join = (workerId: string, weight: number, activationInterval: number) =>
      renewAsWorker(c, keys, { workerId, weight, claims: [], joining: true, activationInterval });
    const pop = (workerId: string) => popDelivery(c, keys, workerId);
    await join('dies', 2, 100);
    await join('lives', 1, 60_000);
    const lost = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'lost' });
    expect((await pop('dies')).id).toBe(lost);
    await queueScripts.enqueue(c, keys, { dataType: 's', data: 'held' });
    const held = await pop('lives');
    await queueScripts.enqueue(c, keys, { dataType: 's', data: 'new' });
    expect(await c.hget(keys.config, 'waiting')).not.toBe('1');
    // `dies` stops renewing: the renewal of `lives` (still busy) takes its task back, and it waits.
    await new Promise((resolve) => setTimeout(resolve, 150));
    const renewal = await renewAsWorker(c, keys, {
      workerId: 'lives',
      claims: [{ id: held.id, token: held.token, expires: held.expires }],
      joining: false,
    });
    expect(renewal.next).toEqual([]);
    expect(await c.hget(keys.config, 'waiting')).toBe('1');
    const done = await queueScripts.complete(c, keys, {
      workerId: 'lives',
      taskId: held.id,
      token: held.token,
      outcome: 'done',
      tokenFloor: 0,
      inline: true,
    });
    expect(done.next.map((e) => parseDelivery(Buffer.from(e)))).toMatchObject([{ id: lost, deliveries: 2 }]);
  });
});

describe('parseDelivery', () => {
  it('reads an element the same from the inbox (bytes) and from a reply (text), text and JSON data alike', () => {
    for (const [type, data, expected] of [
      ['s', 'grüße ✓', 'grüße ✓'],
      ['j', '{"t":1.5,"s":"ü"}', { t: 1.5, s: 'ü' }],
    ] as const) {
      const element = `1764-0 1764000000000123 2 1764000030000 ${type}\n${data}`;
      const fromReply = parseDelivery(element);
      expect(fromReply).toEqual({
        id: '1764-0',
        token: 1764000000000123,
        deliveries: 2,
        expires: 1764000030000,
        data: expected,
      });
      expect(parseDelivery(Buffer.from(element))).toEqual(fromReply);
    }
  });
});

describe('RecentTokens', () => {
  it('takes a token once while it is kept, and forgets the oldest after keepMs', () => {
    const recent = new RecentTokens(100);
    expect(recent.add(1, 0)).toBe(true);
    expect(recent.add(1, 50)).toBe(false);
    expect(recent.add(2, 60)).toBe(true);
    expect(recent.add(3, 150)).toBe(true); // token 1 (from 0) is forgotten now
    expect(recent.add(1, 151)).toBe(true);
    expect(recent.add(2, 152)).toBe(false);
  });
});

// A script that stops part way (inside `saving`, after it wrote) names the bad key as one that
// stops at once does: Redis hands an error caught by pcall back as text, which a rethrow must
// not turn into a generic 'ERR' reply.
describe('a key or record understudy did not write, met after the script wrote', () => {
  it('an inbox that is not a list, met as a completion hands the next task, is CorruptStateError naming it', async () => {
    const keys = queueKeys(uniqueGroup('q-inbox-type'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: true });
    const first = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'one' });
    const pushed = await popDelivery(c, keys, 'ghost');
    await queueScripts.enqueue(c, keys, { dataType: 's', data: 'two' });
    await c.set(keys.inbox('ghost'), 'not a list');
    const refused = await completeAsWorker(c, keys, {
      workerId: 'ghost',
      taskId: first,
      token: pushed.token,
      inline: false,
    }).catch((e) => e);
    expect(refused).toBeInstanceOf(CorruptStateError);
    expect(refused).toMatchObject({ key: keys.inbox('ghost') });
    expect(refused.message).toContain('is not a list (WRONGTYPE)');
  });

  it("a delivery record that is not one, met as a renewal sends a lost reply's delivery again, is CorruptStateError naming the key", async () => {
    const keys = queueKeys(uniqueGroup('q-resend-corrupt'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: true });
    const first = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'one' });
    await c.hset(keys.deliveries, first, 'garbage');
    // It claims nothing it holds: the renewal looks for deliveries to send again (`resend`).
    const refused = await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: false }).catch((e) => e);
    expect(refused).toBeInstanceOf(CorruptStateError);
    expect(refused).toMatchObject({ key: keys.deliveries });
  });
});
