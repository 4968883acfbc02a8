import { joinGroup, type Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import {
  type ChaosProxy,
  type RedisServer,
  startChaosProxy,
  startRedis,
  uniqueGroup,
  waitFor,
} from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

// L2: the next in line arms a timer at the active's lease deadline; it does not wait for its
// own next renewal. Its heartbeat is long here (H = 450 ms), so a takeover that waited for a
// renewal would come up to 450 ms late; three takeovers within 80 ms of the deadline would
// all have to be lucky (odds about 1 in 180).

const A = 1000;
const STANDBY_H = 450;
/** From the dead lease's deadline to the grant, on Redis's clock: a timer, a round trip, a loaded machine. */
const TAKEOVER_LIMIT_MS = 80;
const TAKEOVERS = 3;

let server: RedisServer;
let link: ChaosProxy;
let observer: Redis;
const members: Member[] = [];
beforeAll(async () => {
  server = await startRedis();
  link = await startChaosProxy({ target: { host: server.host, port: server.port } });
  observer = new Redis(server.url, { maxRetriesPerRequest: 1 });
});
afterAll(async () => {
  await Promise.allSettled(members.map((m) => m.leave()));
  observer.disconnect();
  await link.close();
  await server.stop();
});

describe('crash failover at the limit (L2)', () => {
  it('grants the next in line its slot within a round trip of the dead lease’s deadline, not at its next renewal', async () => {
    const group = uniqueGroup('takeover');
    const keys = groupKeys(group);
    // The active reaches Redis through a link the test cuts: to Redis, it is dead.
    const active = await joinGroup({
      redis: link.url(),
      group,
      memberId: 'active',
      weight: 20,
      heartbeatInterval: 50,
      activationInterval: A,
    });
    const standby = await joinGroup({
      redis: server.url,
      group,
      memberId: 'standby',
      weight: 10,
      heartbeatInterval: STANDBY_H,
      activationInterval: A,
    });
    members.push(active, standby);
    const lateness: number[] = [];
    for (let round = 0; round < TAKEOVERS; round++) {
      await waitFor(() => active.isActive() && !standby.isActive(), 'the heavier member to be the active', 10 * A);
      link.blackhole(true);
      // A renewal already past the link may still land: read the deadline once it cannot change.
      await new Promise((resolve) => setTimeout(resolve, 200));
      const deadline = Number(await observer.zscore(keys.leases, 'active'));
      await waitFor(() => standby.isActive(), 'the standby to take over', 3 * A);
      const entries = await observer.xrange(keys.log, '-', '+');
      const granted = entries
        .map(([, flat]) => Object.fromEntries(flat.flatMap((v, i) => (i % 2 === 0 ? [[v, flat[i + 1]]] : []))))
        .findLast((e) => e.type === 'activate' && e.member === 'standby');
      lateness.push(Number(granted?.time) - deadline);
      link.blackhole(false);
    }
    console.info(`takeover after the dead lease's deadline (Redis ms): ${lateness.join(', ')}`);
    for (const late of lateness) {
      expect(late).toBeGreaterThanOrEqual(0);
      expect(late).toBeLessThan(TAKEOVER_LIMIT_MS);
    }
  });
});
