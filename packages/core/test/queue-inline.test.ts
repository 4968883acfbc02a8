// A completion hands the next task to its own worker in its reply, not through the inbox; a
// renewal sends it again when that reply was lost (lua/queue/lib.lua `dispatch`, `resend`), and
// the worker runs a delivery once however often it arrives.
import { queueKeys } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { parseDelivery, RecentTokens } from '../src/queue/inbox.js';
import { queueScripts } from '../src/scripts.js';
import { fileServer, renewAsWorker, uniqueGroup } from './helpers.js';

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
    const [hsets, zranges] = [await calls('hset'), await calls('zrange')];
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
    // The earliest lease and the two earliest expiries (reap: the reply's reapAt knows the next
    // when the earliest went, here none), and the places once: the only one, filled, needs no
    // second look.
    expect((await calls('zrange')) - zranges).toBe(3);
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
