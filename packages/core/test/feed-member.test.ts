// The group feed on the member (DESIGN §10): every member receives every message in order,
// the active commits for its slot, and a new holder starts again after the slot's last commit.
import { type Advisory, type GroupMessage, type Member, publish } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { describe, expect, it } from 'vitest';
import { fileServer, memberFactory, uniqueGroup, waitFor } from './helpers.js';

const { server, observer } = fileServer();
const join = memberFactory(server);

/** A member's onMessage that records what it got; `fail` makes it throw for one message. */
function recorder(fail?: (message: GroupMessage) => boolean) {
  const got: GroupMessage[] = [];
  const onMessage = (message: GroupMessage) => {
    got.push(message);
    if (fail?.(message)) throw new Error(`refused ${String(message.data)}`);
  };
  return { got, onMessage };
}

async function publishAll(group: string, data: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const d of data) ids.push(await publish({ redis: observer(), group }, d));
  return ids;
}

describe('the group feed on members', () => {
  it('delivers every message to every member in order; the active acts on it and commits for its slot', async () => {
    const group = uniqueGroup('feed-member');
    const a = recorder();
    const b = recorder();
    const active = await join({ group, memberId: 'a', weight: 20, onMessage: a.onMessage });
    await waitFor(() => active.isActive(), 'a to activate', 5000);
    const standby = await join({ group, memberId: 'b', weight: 10, onMessage: b.onMessage });
    const ids = await publishAll(group, ['m1', 'm2', 'm3', 'm4']);
    await waitFor(() => a.got.length === 4 && b.got.length === 4, 'both members to get every message', 5000);
    expect(a.got.map((m) => m.data)).toEqual(['m1', 'm2', 'm3', 'm4']);
    expect(b.got.map((m) => m.id)).toEqual(ids);
    const epoch = active.epoch;
    expect(a.got.every((m) => m.active && m.epoch === epoch && m.slot === 0)).toBe(true);
    expect(b.got.every((m) => !m.active && m.epoch === undefined)).toBe(true);
    await waitFor(() => active.committed === ids[3], 'the last message to be committed', 5000);
    expect(await observer().hget(groupKeys(group).commits, '0')).toBe(ids[3]);
    expect(standby.committed).toBeUndefined();
  });

  it('does not deliver messages published before the member joined', async () => {
    const group = uniqueGroup('feed-member');
    await publishAll(group, ['before']);
    const a = recorder();
    await join({ group, memberId: 'a', weight: 20, onMessage: a.onMessage });
    const [id] = await publishAll(group, ['after']);
    await waitFor(() => a.got.length > 0, 'the message', 5000);
    expect(a.got.map((m) => m.id)).toEqual([id]);
  });

  it('a new holder acts again on what the old one did not commit, after onActivate, then on new messages', async () => {
    const group = uniqueGroup('feed-member');
    const order: string[] = [];
    // A refuses m3: it commits m1 and m2, then disables itself and hands the slot over.
    const a = recorder((m) => m.data === 'm3');
    const b = recorder();
    const first: Member = await join({ group, memberId: 'a', weight: 20, onMessage: a.onMessage });
    await waitFor(() => first.isActive(), 'a to activate', 5000);
    await join({
      group,
      memberId: 'b',
      weight: 10,
      onActivate: () => void order.push('activate'),
      onMessage: (m) => {
        if (m.active) order.push(`act ${String(m.data)}`);
        return b.onMessage(m);
      },
    });
    const ids = await publishAll(group, ['m1', 'm2', 'm3']);
    await waitFor(() => order.includes('act m3'), 'b to act on m3', 5000);
    const [m4] = await publishAll(group, ['m4']);
    await waitFor(() => order.includes('act m4'), 'b to act on m4', 5000);
    // b got every message once as a standby, then m3 again, as the active, after onActivate.
    expect(order).toEqual(['activate', 'act m3', 'act m4']);
    expect(b.got.filter((m) => !m.active).map((m) => m.data)).toEqual(['m1', 'm2', 'm3']);
    expect(first.committed).toBeUndefined();
    expect(first.weight).toBe(0);
    expect(await observer().hget(groupKeys(group).commits, '0')).toBe(m4);
    expect(ids).toHaveLength(3);
  });

  it('a holder that has not committed yet gets every kept message on activation', async () => {
    const group = uniqueGroup('feed-member');
    const b = recorder();
    const standby = await join({ group, memberId: 'b', weight: 10, onMessage: b.onMessage });
    await waitFor(() => standby.isActive(), 'b to activate', 5000);
    // b is alone and active: it commits; it leaves, and c starts after b's last commit.
    const [m1] = await publishAll(group, ['m1']);
    await waitFor(() => standby.committed === m1, 'b to commit m1', 5000);
    const c = recorder();
    const next = await join({ group, memberId: 'c', weight: 5, onMessage: c.onMessage });
    await standby.leave();
    await waitFor(() => next.isActive(), 'c to take over', 5000);
    const [m2] = await publishAll(group, ['m2']);
    await waitFor(() => next.committed === m2, 'c to commit m2', 5000);
    expect(c.got.filter((m) => m.active).map((m) => m.data)).toEqual(['m2']);
  });
});

describe('retention on members', () => {
  it('tells a member that fell behind what the feed keeps: advisory FEED_GAP with the messages it missed', async () => {
    const group = uniqueGroup('feed-member');
    let release: () => void = () => undefined;
    const blocked = new Promise<void>((resolve) => {
      release = resolve;
    });
    const got: string[] = [];
    const gaps: Extract<Advisory, { code: 'FEED_GAP' }>[] = [];
    const member = await join({
      group,
      memberId: 'slow',
      weight: 10,
      onMessage: async (m) => {
        got.push(m.id);
        if (got.length === 1) await blocked;
      },
    });
    member.on('advisory', (a) => {
      if (a.code === 'FEED_GAP') gaps.push(a);
    });
    // The first message holds the member's reader; meanwhile the feed is capped far below what
    // was published (the cap trims whole stream nodes: 100 entries each by default).
    const [first] = await publishAll(group, ['first']);
    await waitFor(() => got.length === 1, 'the first message to reach onMessage', 5000);
    const more = Array.from({ length: 400 }, (_, i) => `m${i}`);
    for (const data of more) await publish({ redis: observer(), group, feedMaxLength: 10 }, data);
    release();
    await waitFor(() => gaps.length > 0, 'FEED_GAP', 5000);
    expect(gaps[0]).toMatchObject({ code: 'FEED_GAP', reason: 'trimmed' });
    expect(gaps[0]?.missed).toBeGreaterThan(0);
    expect(got[0]).toBe(first);
    // It reads on from what is kept, still in order.
    const last = await observer().xrevrange(groupKeys(group).feed, '+', '-', 'COUNT', 1);
    await waitFor(() => got.at(-1) === last[0]?.[0], 'the member to read on to the last message', 5000);
    const ids = got.slice(1);
    expect([...ids].sort(compareIds)).toEqual(ids);
  });
});

function compareIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am - bm || as - bs;
}
