import { joinGroup, type Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { uniqueGroup, waitFor } from '@understudy/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { fileServer } from './helpers.js';

// S7: announcements only speed things up, and every reply says where the group stands. A
// forged announcement from the future must not cost a member its speed for longer than one
// reply. The standby renews every 450 ms here, so a standby that ignored announcements would
// take over a leave up to 450 ms late; three within 100 ms would all have to be lucky (odds
// about 1 in 90).

const A = 1000;
const STANDBY_H = 450;
const HANDOVER_LIMIT_MS = 100;
const ROUNDS = 3;

const { server, observer } = fileServer();
const members: Member[] = [];
afterAll(async () => {
  await Promise.allSettled(members.map((m) => m.leave()));
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('announcements (S7)', () => {
  it('still speed up a handover after a forged one from the future, once a reply came', async () => {
    const group = uniqueGroup('forged-version');
    const keys = groupKeys(group);
    const joinHigh = async () => {
      const high = await joinGroup({
        redis: server().url,
        group,
        memberId: 'high',
        weight: 20,
        heartbeatInterval: 50,
        activationInterval: A,
      });
      members.push(high);
      return high;
    };
    let high = await joinHigh();
    const low = await joinGroup({
      redis: server().url,
      group,
      memberId: 'low',
      weight: 10,
      heartbeatInterval: STANDBY_H,
      activationInterval: A,
    });
    members.push(low);
    const handovers: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      await waitFor(() => high.isActive() && !low.isActive(), 'high to be the active', 10 * A);
      const [created, version] = await observer().hmget(keys.config, 'createdAt', 'version');
      await observer().spublish(keys.events, JSON.stringify({ i: created, v: Number(version) + 1000, c: [] }));
      // Every member renews at least once meanwhile: its reply says where the group really is.
      await sleep(2 * STANDBY_H);
      await high.leave();
      const leftAt = performance.now();
      await waitFor(() => low.isActive(), 'low to take over', 3 * A);
      handovers.push(performance.now() - leftAt);
      high = await joinHigh();
    }
    console.info(`handover after a forged future version (ms): ${handovers.map((ms) => ms.toFixed(1)).join(', ')}`);
    for (const ms of handovers) expect(ms).toBeLessThan(HANDOVER_LIMIT_MS);
  });
});
