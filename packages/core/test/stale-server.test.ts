// A Redis master frozen past a failover (SIGSTOP, a paused VM) comes back believing it is the
// master: it runs the requests members queued on it before it froze, grants slots of its own
// and announces them, with versions of its own, to the subscribers still connected to it
// (finding F8, docs/RELIABILITY.md). These tests stand in for it with a forged announcement on
// the group's channel, shaped like the stale master's: same incarnation, a version ahead.
import type { Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { plainRedis, type RedisServer } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST, memberFactory, Timeline, uniqueGroup, waitFor } from './helpers.js';

const { heartbeatInterval: H, activationInterval: A } = FAST;

let server: RedisServer;
let observer: Redis;
beforeAll(async () => {
  // Only commands, no faults: the server at REDIS_URL will do, if one is given.
  server = await plainRedis();
  observer = new Redis(server.url, { connectionName: 'test-observer' });
});
afterAll(() => observer.disconnect());
const join = memberFactory(() => server);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A pair in `group`: `high` active, `low` standing by. */
async function activePair(group: string, timeline: Timeline): Promise<[Member, Member]> {
  const high = await join({ group, memberId: 'high', weight: 20 });
  const low = await join({ group, memberId: 'low', weight: 10 });
  timeline.watch(high);
  timeline.watch(low);
  await waitFor(() => high.isActive(), 'high active', 3 * A);
  return [high, low];
}

/** Publishes what a stale master would: the group's incarnation, a version `ahead` of the group's, and `changes`. */
async function announceAsStaleMaster(group: string, ahead: number, changes: unknown[][]): Promise<void> {
  const keys = groupKeys(group);
  const [created, version] = await observer.hmget(keys.config, 'createdAt', 'version');
  const message = JSON.stringify({ i: created, v: Number(version) + ahead, c: changes });
  await observer.spublish(keys.events, message);
}

describe('announcements from a stale server', () => {
  it('never activate a member, nor take a slot from the active one: the server it renews on decides', async () => {
    const group = uniqueGroup('stale');
    const timeline = new Timeline();
    const [high, low] = await activePair(group, timeline);
    const epoch = Number(await observer.hget(groupKeys(group).config, 'epoch'));
    await announceAsStaleMaster(group, 3, [
      ['high', 'gone', epoch, 0, 'lapse'],
      ['low', 'active', epoch + 1, 0, 'failover'],
    ]);
    await sleep(5 * H);
    expect(low.isActive()).toBe(false);
    expect(high.isActive()).toBe(true);
    expect(timeline.of('low', 'activate')).toEqual([]);
    expect(timeline.of('high', 'deactivate')).toEqual([]);
  });

  it('do not leave members deaf to the group’s own, lower versions afterwards', async () => {
    const group = uniqueGroup('stale');
    const timeline = new Timeline();
    const [high, low] = await activePair(group, timeline);
    await announceAsStaleMaster(group, 50, []);
    await sleep(3 * H);
    await high.leave();
    await waitFor(() => low.isActive(), 'low active after high left', A + H + 500);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});
