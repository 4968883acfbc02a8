// The group feed, phase 1 (DESIGN §10): commits fenced by slot and epoch, trimming to the lowest
// commit, the cap, FEED_GAP and the replay on activation.
import { type ActivateInfo, type FeedMessage, type JoinOptions, type Member, publish } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import type { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { type CommitRequest, commitMessage } from '../src/feed/commit.js';
import type { FeedGap } from '../src/feed/reader.js';
import { FAST, feedReaderFactory, fileServer, memberFactory, uniqueGroup, waitFor } from './helpers.js';

const A = FAST.activationInterval;
const LATE_MS = 1000;
const { server, observer } = fileServer();
const join = memberFactory(server);

const openReader = feedReaderFactory(server);

interface Holder {
  member: Member;
  slot: number;
  epoch: number;
  nonce: string;
}

/** Joins a member and waits until it is active; its slot and epoch as its activation said. */
async function activeMember(
  group: string,
  memberId: string,
  weight: number,
  options: Partial<JoinOptions> = {},
): Promise<Holder> {
  let activation: ActivateInfo | undefined;
  const onActivate = (i: ActivateInfo) => {
    activation = i;
  };
  const member = await join({ group, memberId, weight, onActivate, ...options });
  await waitFor(() => member.isActive() && activation, `${memberId} active`, 2 * A + LATE_MS);
  const { slot, epoch } = activation as ActivateInfo;
  return { member, slot, epoch, nonce: await nonceOf(group, memberId) };
}

/** The nonce of the member object that joined with this id, as its member record holds it. */
async function nonceOf(group: string, memberId: string): Promise<string> {
  const record = await observer().hget(groupKeys(group).members, memberId);
  return (JSON.parse(record as string) as { n: string }).n;
}

function commit(group: string, holder: Holder, id: string, change: Partial<CommitRequest> = {}) {
  const { member, slot, epoch, nonce } = holder;
  return commitMessage(observer() as Redis, groupKeys(group), {
    memberId: member.id,
    nonce,
    slot,
    epoch,
    id,
    ...change,
  });
}

async function publishMany(group: string, count: number, feedMaxLength?: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i += 1) ids.push(await publish({ redis: observer(), group, feedMaxLength }, i));
  return ids;
}

const feedIds = async (group: string) => (await observer().xrange(groupKeys(group).feed, '-', '+')).map(([id]) => id);

describe('a commit', () => {
  it('is accepted from the slot’s current holder and recorded for the slot', async () => {
    const group = uniqueGroup('commit-ok');
    const holder = await activeMember(group, 'holder', 10);
    const [first, second] = await publishMany(group, 2);
    expect(await commit(group, holder, first as string)).toEqual({ outcome: 'committed', trimmed: 0 });
    expect(await commit(group, holder, second as string)).toMatchObject({ outcome: 'committed' });
    const reader = await openReader(group);
    expect(await reader.readCommit(holder.slot)).toBe(second);
    expect(await reader.readCommit(holder.slot + 1)).toBeUndefined();
  });

  it('is refused for an older epoch, another member, another member object or a released slot', async () => {
    const group = uniqueGroup('commit-stale');
    const holder = await activeMember(group, 'holder', 20);
    const standby = await join({ group, memberId: 'standby', weight: 10 });
    const [id] = (await publishMany(group, 1)) as [string];
    expect(await commit(group, holder, id, { epoch: holder.epoch - 1 })).toEqual({ outcome: 'stale', reason: 'epoch' });
    expect(await commit(group, holder, id, { memberId: standby.id })).toEqual({ outcome: 'stale', reason: 'holder' });
    expect(await commit(group, holder, id, { nonce: 'another-object' })).toEqual({
      outcome: 'stale',
      reason: 'holder',
    });
    await holder.member.leave();
    await waitFor(() => standby.isActive(), 'the standby active', A + LATE_MS);
    expect(await commit(group, holder, id)).toEqual({ outcome: 'stale', reason: 'holder' });
    expect(await commit(group, holder, id, { slot: holder.slot + 1 })).toEqual({ outcome: 'stale', reason: 'free' });
    expect(await observer().hlen(groupKeys(group).commits)).toBe(0);
  });

  it('is refused while the slot is being released (preempted, its deactivate handler still running)', async () => {
    const group = uniqueGroup('commit-releasing');
    let settle: () => void = () => undefined;
    const deactivating = new Promise<void>((resolve) => {
      settle = resolve;
    });
    let told = false;
    const holder = await activeMember(group, 'holder', 10, {
      onDeactivate: async () => {
        told = true;
        await deactivating;
      },
    });
    const [id] = (await publishMany(group, 1)) as [string];
    await join({ group, memberId: 'stronger', weight: 20 });
    await waitFor(() => told, 'the holder told to deactivate', A + LATE_MS);
    expect(await commit(group, holder, id)).toEqual({ outcome: 'stale', reason: 'releasing' });
    settle();
  });

  it('is refused once the holder’s lease has run out, even before a script has freed the slot', async () => {
    const group = uniqueGroup('commit-lapsed');
    const holder = await activeMember(group, 'holder', 10);
    const [id] = (await publishMany(group, 1)) as [string];
    // The lease ends now on the server while the slot still names the holder (nothing ran since).
    await observer().zadd(groupKeys(group).leases, 1, holder.member.id);
    expect(await commit(group, holder, id)).toEqual({ outcome: 'stale', reason: 'lease' });
  });

  it('is refused at or before the slot’s commit, and after the feed’s last message', async () => {
    const group = uniqueGroup('commit-order');
    const holder = await activeMember(group, 'holder', 10);
    const [first, second] = (await publishMany(group, 2)) as [string, string];
    await commit(group, holder, second);
    expect(await commit(group, holder, second)).toEqual({ outcome: 'behind', current: second });
    expect(await commit(group, holder, first)).toEqual({ outcome: 'behind', current: second });
    const [ms] = second.split('-');
    expect(await commit(group, holder, `${Number(ms) + 1000}-0`)).toEqual({ outcome: 'ahead', last: second });
  });
  it('says CorruptStateError when the commits key holds what understudy never writes there', async () => {
    const group = uniqueGroup('commit-corrupt');
    const holder = await activeMember(group, 'holder', 10);
    const [id] = (await publishMany(group, 1)) as [string];
    await observer().hset(groupKeys(group).commits, String(holder.slot), 'not an id');
    await expect(commit(group, holder, id)).rejects.toMatchObject({
      code: 'CORRUPT_STATE',
      key: groupKeys(group).commits,
    });
  });
});

describe('trimming by commits', () => {
  it('keeps every message until each slot committed it, then trims to the lowest commit', async () => {
    const group = uniqueGroup('commit-trim');
    const one = await activeMember(group, 'one', 20, { activeGoal: 2 });
    const two = await activeMember(group, 'two', 10, { activeGoal: 2 });
    expect(new Set([one.slot, two.slot])).toEqual(new Set([0, 1]));
    const ids = await publishMany(group, 10);
    expect(await commit(group, one, ids[7] as string)).toEqual({ outcome: 'committed', trimmed: 0 });
    expect(await feedIds(group)).toEqual(ids);
    expect(await commit(group, two, ids[3] as string)).toEqual({ outcome: 'committed', trimmed: 3 });
    expect(await feedIds(group)).toEqual(ids.slice(3));
    expect(await commit(group, two, ids[9] as string)).toEqual({ outcome: 'committed', trimmed: 4 });
    expect(await feedIds(group)).toEqual(ids.slice(7));
  });

  it('trims nothing past a slot whose commit was lost (S6) until that slot commits again', async () => {
    const group = uniqueGroup('commit-lost');
    const one = await activeMember(group, 'one', 20, { activeGoal: 2 });
    const two = await activeMember(group, 'two', 10, { activeGoal: 2 });
    const ids = await publishMany(group, 6);
    await commit(group, one, ids[2] as string);
    await commit(group, two, ids[2] as string);
    await observer().del(groupKeys(group).commits);
    expect(await commit(group, one, ids[5] as string)).toEqual({ outcome: 'committed', trimmed: 0 });
    expect(await feedIds(group)).toEqual(ids.slice(2));
    expect(await commit(group, two, ids[4] as string)).toEqual({ outcome: 'committed', trimmed: 2 });
  });
});

describe('the cap and FEED_GAP', () => {
  it('caps the feed at about feedMaxLength messages (whole stream nodes of 100)', async () => {
    const group = uniqueGroup('feed-cap');
    await publishMany(group, 400, 50);
    const length = await observer().xlen(groupKeys(group).feed);
    expect(length).toBeGreaterThanOrEqual(50);
    expect(length).toBeLessThanOrEqual(150);
  });

  it('tells a reader that fell behind what is kept exactly how many messages it missed', async () => {
    const group = uniqueGroup('feed-gap');
    const gaps: FeedGap[] = [];
    const received: FeedMessage[] = [];
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const reader = await openReader(group, { count: 10, onGap: (g) => gaps.push(g) });
    await reader.start(async (m) => {
      received.push(m);
      if (received.length === 1) await held;
    });
    const ids = await publishMany(group, 1);
    await waitFor(() => received.length === 1, 'the first message');
    ids.push(...(await publishMany(group, 300, 20)));
    release();
    await waitFor(() => received.at(-1)?.id === ids.at(-1), 'the last message');
    expect(gaps).toHaveLength(1);
    const gap = gaps[0] as FeedGap;
    expect(gap.reason).toBe('trimmed');
    expect(received.length + (gap.missed ?? 0)).toBe(ids.length);
    const missed = new Set(ids.filter((id) => !received.some((m) => m.id === id)));
    expect(missed.size).toBe(gap.missed);
  });
});

describe('the replay on activation', () => {
  it('delivers again every message after the slot’s commit up to the given one, in order', async () => {
    const group = uniqueGroup('replay');
    const holder = await activeMember(group, 'holder', 10);
    const ids = await publishMany(group, 250);
    await commit(group, holder, ids[4] as string);
    const reader = await openReader(group);
    const replayed: string[] = [];
    const commitId = await reader.readCommit(holder.slot);
    const { last } = await reader.replay(commitId, ids[239] as string, (m) => void replayed.push(m.id));
    expect(replayed).toEqual(ids.slice(5, 240));
    expect(last).toBe(ids[239]);
  });

  it('delivers the whole feed for a slot without commit, and reports no gap', async () => {
    const group = uniqueGroup('replay-none');
    const ids = await publishMany(group, 3);
    const gaps: FeedGap[] = [];
    const reader = await openReader(group, { onGap: (g) => gaps.push(g) });
    const replayed: string[] = [];
    await reader.replay(undefined, '+', (m) => void replayed.push(m.id));
    expect(replayed).toEqual(ids);
    expect(gaps).toEqual([]);
  });

  it('reports a gap when the cap trimmed the slot’s commit, and replays what is kept', async () => {
    const group = uniqueGroup('replay-gap');
    const holder = await activeMember(group, 'holder', 10);
    const ids = await publishMany(group, 2);
    await commit(group, holder, ids[0] as string);
    ids.push(...(await publishMany(group, 300, 20)));
    const gaps: FeedGap[] = [];
    const reader = await openReader(group, { onGap: (g) => gaps.push(g) });
    const replayed: string[] = [];
    await reader.replay(ids[0], '+', (m) => void replayed.push(m.id));
    expect(gaps).toEqual([{ after: ids[0], reason: 'trimmed' }]);
    expect(replayed).toEqual(await feedIds(group));
  });

  it('stops after the delivery in progress once its signal aborts (the activation ended)', async () => {
    const group = uniqueGroup('replay-abort');
    const ids = await publishMany(group, 10);
    const reader = await openReader(group);
    const ended = new AbortController();
    const replayed: string[] = [];
    const { last } = await reader.replay(
      undefined,
      '+',
      (m) => {
        replayed.push(m.id);
        if (replayed.length === 3) ended.abort();
      },
      ended.signal,
    );
    expect(replayed).toEqual(ids.slice(0, 3));
    expect(last).toBe(ids[2]);
  });
});
