// An attacker's review of the S6 fixes (issue 13, 6ca8e7e): interleavings in which an older copy
// of group keys (a RESTORE, or a failover back to a lagging server the group's run_id still names),
// a lost config key, or two member objects with the same id still broke S1, S2 or L1. Each test
// failed on 6ca8e7e (and on main d458609) and passes since 945eb82 (finding F22, RELIABILITY.md).
import { type Advisory, joinGroup, type Member } from '@understudy/core';
import { type GroupKeys, groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST, memberFactory, restore, Switch, snapshot, Timeline, uniqueGroup, waitFor } from './helpers.js';

const { heartbeatInterval: H, activationInterval: A } = FAST;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let server: RedisServer;
let observer: Redis;
/** A port nothing listens on: a member switched to it is cut off from Redis. */
let nowhere: number;
beforeAll(async () => {
  server = await startRedis();
  observer = new Redis(server.url, { connectionName: 'test-observer' });
  const closed = await startRedis();
  nowhere = closed.port;
  await closed.stop();
});
afterAll(() => observer.disconnect());
const join = memberFactory(() => server);

describe('the slots key restored from an older DUMP, counts unchanged', () => {
  it('a member restarted with the same id is not handed the grant of its predecessor while another holds the slot', async () => {
    const group = uniqueGroup('old-slots-same-id');
    const keys = groupKeys(group);
    const timeline = new Timeline();
    const link = await Switch.start(server.port);
    try {
      const first = await join({ group, memberId: 'x', weight: 20 });
      timeline.watch(first);
      await waitFor(() => first.isActive(), 'x active', 3 * A);
      const e1 = first.epoch as number;
      const old = await snapshot(observer, [keys.slots]);

      const y = await join({ redis: link.url, group, memberId: 'y', weight: 10 });
      timeline.watch(y);
      await first.leave();
      await waitFor(() => y.isActive(), 'y active after x left', 3 * A);
      const e2 = y.epoch as number;
      // x comes back under a supervisor with the same id (lighter now: it does not preempt y).
      const again = await join({ group, memberId: 'x', weight: 5 });
      timeline.watch(again);
      await sleep(3 * H);

      // y's link is slow for a moment (it goes on believing: its lease has not run out), and the
      // slots key goes back to the DUMP taken under x: one slot, as many as config `held` says.
      link.to(nowhere);
      await restore(observer, old);
      await sleep(4 * H);
      link.to(server.port);
      await sleep(A);

      // Seen on 6ca8e7e: the restarted x is told "active e1" (it claims nothing, same server, no
      // quarantine), delivers e1 < e2 while y still believes in e2; y's next renewal takes the
      // slot back and x deactivates — two actives with N = 1, and an epoch the group took back.
      expect(e2).toBeGreaterThan(e1);
      expect(timeline.of('x', 'activate').map((e) => e.epoch)).toEqual([e1]);
      expect(timeline.maxConcurrentActive()).toBe(1);
    } finally {
      await link.close();
    }
  });

  it('naming a member that has left: the group rebuilds instead of refusing every script as CORRUPT', async () => {
    const group = uniqueGroup('old-slots-gone');
    const keys = groupKeys(group);
    const advisories: Advisory[] = [];
    const x = await join({ group, memberId: 'x', weight: 20 });
    await waitFor(() => x.isActive(), 'x active', 3 * A);
    const old = await snapshot(observer, [keys.slots]);
    const y = await join({ group, memberId: 'y', weight: 10 });
    y.on('advisory', (a) => advisories.push(a));
    await x.leave();
    await waitFor(() => y.isActive(), 'y active after x left', 3 * A);

    await restore(observer, old);
    // L1: the group converges again within A + H + 0.5 s (plus one quarantine of A for the lost state).
    await sleep(2 * A + H + 500);
    // Seen on 6ca8e7e: `held` still matches, so no script finds the state lost; every one of them
    // (renew, release, join) fails with "CORRUPT …:slots field 0 names x, which has no record":
    // y loses its lease and nobody is ever active again.
    expect(advisories.map((a) => a.code)).not.toContain('CORRUPT_STATE');
    expect(y.isActive()).toBe(true);
  });
});

describe('the config key lost, then recreated by a joiner with a shorter activation interval', () => {
  it('the active, whose record survived, is not left believing for longer than the group’s A', async () => {
    const group = uniqueGroup('lost-config-a');
    const keys = groupKeys(group);
    const timeline = new Timeline();
    const link = await Switch.start(server.port);
    const long = { heartbeatInterval: 100, activationInterval: 3000 };
    const short = { heartbeatInterval: 100, activationInterval: 1000 };
    let x: Member | undefined;
    try {
      x = await join({ ...long, redis: link.url, group, memberId: 'x', weight: 20 });
      timeline.watch(x);
      await waitFor(() => x?.isActive(), 'x active', 3 * long.activationInterval);

      // x is cut off for a moment; meanwhile the config key is lost (DEL, eviction) and z, with
      // A = 1 s, joins first: it creates the group again with its A, and the rebuild keeps x's record.
      link.to(nowhere);
      await observer.del(keys.config);
      const z = await join({ ...short, group, memberId: 'z', weight: 10 });
      timeline.watch(z);
      expect(await observer.hget(keys.config, 'activationInterval')).toBe('1000');

      // x is back: its renewal is accepted (no PARAM_MISMATCH: its record exists), Redis gives it
      // leases of 1 s, and x keeps the deadline it took from its last 3 s lease.
      link.to(server.port);
      // (Since 945eb82 the renewal is refused — PARAM_MISMATCH — and x leaves instead.)
      let renewed = false;
      x.on('renewal', (r) => {
        if (r.outcome === 'ok') renewed = true;
      });
      const member = x;
      await waitFor(() => renewed || member.state === 'left', 'x to renew or be refused', 3000);
      link.to(nowhere);
      await sleep(long.activationInterval + 500);

      // Seen on 6ca8e7e: z activates ~1 s after x's last renewal, while x believes until ~3 s
      // after the renewal before the cut: about 1.5 s of two actives with N = 1.
      expect(timeline.maxConcurrentActive()).toBe(1);
    } finally {
      await link.close();
    }
  });
});

describe('an older DUMP of a quiet group restored: counts and version unchanged', () => {
  it.each([
    ['the leases key', (keys: GroupKeys) => [keys.leases]],
    ['every key of the group', (keys: GroupKeys) => [...keys.scriptKeys]],
  ])(
    '%s: the active, whose old lease score has passed, is not dropped and replaced while it still believes',
    async (_, restored) => {
      const group = uniqueGroup('old-leases');
      const keys = groupKeys(group);
      const timeline = new Timeline();
      const link = await Switch.start(server.port);
      try {
        const x = await join({ redis: link.url, group, memberId: 'x', weight: 20 });
        const y = await join({ group, memberId: 'y', weight: 10 });
        timeline.watch(x);
        timeline.watch(y);
        await waitFor(() => x.isActive(), 'x active', 3 * A);
        const old = await snapshot(observer, restored(keys));
        // The DUMP's lease scores are in the past once one activation interval has gone by.
        await sleep(A + 2 * H);

        // x's link is slow for a moment (it believes until its own deadline), and the keys go back
        // to the DUMP: the same two members and the same version (only renewals ran since), so every
        // count agrees and no member knows a newer version.
        link.to(nowhere);
        await restore(observer, old);
        await sleep(A);
        link.to(server.port);
        await sleep(A);

        // Seen on 6ca8e7e: y's next renewal finds x's (old) lease lapsed, drops x and is granted the
        // slot at once — same server, no quarantine — while x believes for up to one more lease.
        expect(timeline.maxConcurrentActive()).toBe(1);
      } finally {
        await link.close();
      }
    },
  );
});

describe('two member objects with the same id', () => {
  it('the old one, cut off while a supervisor started its replacement, is not told the replacement’s grant', async () => {
    const group = uniqueGroup('same-id-twice');
    const link = await Switch.start(server.port);
    try {
      const old = await join({ redis: link.url, group, memberId: 'x', weight: 20 });
      const oldActivations: number[] = [];
      old.on('activate', (info) => oldActivations.push(info.epoch));
      await waitFor(() => old.isActive(), 'the old x active', 3 * A);
      // Cut off: the old x deactivates at its deadline and Redis drops it once its lease lapsed.
      link.to(nowhere);
      await sleep(A + 2 * H);
      expect(old.isActive()).toBe(false);

      // The replacement joins with the same id (the old lease lapsed: no MEMBER_EXISTS) and is granted.
      const fresh = await join({ group, memberId: 'x', weight: 20 });
      await waitFor(() => fresh.isActive(), 'the new x active', 3 * A);

      // The partition heals: the old object renews with its own nonce and claims nothing.
      link.to(server.port);
      let both = 0;
      const until = Date.now() + 2 * A;
      while (Date.now() < until) {
        if (old.isActive() && fresh.isActive()) both++;
        await sleep(H / 5);
      }
      // Seen on 6ca8e7e: renew ignores the record's nonce, finds "x active E2", and tells the old
      // object so: it activates E2 too, and both keep renewing the same lease — two processes
      // believe for good.
      expect(oldActivations).toHaveLength(1);
      expect(both).toBe(0);
    } finally {
      await link.close();
    }
  });

  it('the old one’s leave does not remove the replacement, which holds the slot', async () => {
    const group = uniqueGroup('same-id-leave');
    const timeline = new Timeline();
    const oldLink = await Switch.start(server.port);
    const freshLink = await Switch.start(server.port);
    try {
      const old = await join({ redis: oldLink.url, group, memberId: 'x', weight: 20 });
      await waitFor(() => old.isActive(), 'the old x active', 3 * A);
      oldLink.to(nowhere);
      await sleep(A + 2 * H);
      const fresh = await join({ redis: freshLink.url, group, memberId: 'x', weight: 20 });
      timeline.watch(fresh);
      const y = await join({ group, memberId: 'y', weight: 10 });
      timeline.watch(y);
      await waitFor(() => fresh.isActive(), 'the new x active', 3 * A);

      // The old process is stopped once the partition heals; the new one's link is slow just then.
      oldLink.to(server.port);
      // (Since 945eb82 the old object's renewal is refused — MEMBER_EXISTS — and it leaves instead.)
      let renewed = false;
      old.on('renewal', (r) => {
        if (r.outcome === 'ok') renewed = true;
      });
      await waitFor(() => renewed || old.state === 'left', 'the old x to renew or be refused', 3000);
      freshLink.to(nowhere);
      await old.leave();
      await sleep(A);
      freshLink.to(server.port);
      await sleep(A);

      // Seen on 6ca8e7e: leave.lua removes member "x" whatever object asks, so the replacement's
      // slot is freed and y is granted it at once while the replacement still believes.
      expect(timeline.maxConcurrentActive()).toBe(1);
    } finally {
      await Promise.all([oldLink.close(), freshLink.close()]);
    }
  });
});

describe('a failover back to a server that wrote the group before and lags', () => {
  it('the lagging old master, promoted again, does not drop the active and grant its slot at once', async () => {
    // M → R → M, as a flapping Sentinel failover does: R never needed to record its replication
    // id (it granted nothing), so config `replId` still names M's when M, lagging behind R, takes
    // over again (under load R may record its own first: the scenario is then a plainer one). A
    // full sync waits repl-diskless-sync-delay, 5 s by default: none here.
    const config = { 'repl-diskless-sync-delay': '0' };
    const m = await startRedis({ config });
    const r = await startRedis({ config });
    const toX = await Switch.start(m.port);
    const toY = await Switch.start(m.port);
    const replication = await Switch.start(r.port);
    const adminM = new Redis(m.url);
    const adminR = new Redis(r.url);
    const group = uniqueGroup('failback');
    const timeline = new Timeline();
    const members: Member[] = [];
    const linked = (admin: Redis) =>
      waitFor(async () => /master_link_status:up/.test(await admin.info('replication')), 'replication link up', 5000);
    try {
      await adminR.call('REPLICAOF', '127.0.0.1', String(m.port));
      await linked(adminR);
      const x = await joinGroup({ ...FAST, redis: toX.url, group, memberId: 'x', weight: 20 });
      const y = await joinGroup({ ...FAST, redis: toY.url, group, memberId: 'y', weight: 10 });
      members.push(x, y);
      timeline.watch(x);
      timeline.watch(y);
      await waitFor(() => x.isActive(), 'x active', 3 * A);

      // Failover to R: the members move; x holds its slot and renews there.
      await adminR.call('REPLICAOF', 'NO', 'ONE');
      toX.to(r.port);
      toY.to(r.port);
      await sleep(3 * H);
      // M comes back as R's replica, through a link that is then cut: M falls behind.
      await adminM.call('REPLICAOF', '127.0.0.1', String(replication.port));
      await linked(adminM);
      await sleep(3 * H);
      replication.to(nowhere);
      await sleep(A + 2 * H);

      // Failover back to the lagging M; x's link is slow just then (it believes until its deadline).
      await adminM.call('REPLICAOF', 'NO', 'ONE');
      toX.to(nowhere);
      toY.to(m.port);
      await sleep(A);
      toX.to(m.port);
      await sleep(A);

      // Seen on 6ca8e7e: on M, y's renewal finds x's lease (as M last had it) lapsed, drops x and
      // is granted at once: config named M's run_id (then the server's mark), so no quarantine; x still believes.
      expect(timeline.maxConcurrentActive()).toBe(1);
    } finally {
      await Promise.allSettled(members.map((member) => member.leave()));
      adminM.disconnect();
      adminR.disconnect();
      await Promise.all([toX.close(), toY.close(), replication.close()]);
      await Promise.all([m.stop(), r.stop()]);
    }
  });
});

describe('the leases key restored from an older DUMP, and the next script is not a renewal', () => {
  it('a join right after it drops no live member and is granted nothing while the holder believes', async () => {
    const group = uniqueGroup('old-leases-join');
    const keys = groupKeys(group);
    const timeline = new Timeline();
    const x = await join({ group, memberId: 'x', weight: 20 });
    timeline.watch(x);
    await waitFor(() => x.isActive(), 'x active', 3 * A);
    const old = await snapshot(observer, [keys.leases]);
    // x renews past the lease the DUMP holds.
    await sleep(A + 2 * H);
    // The leases go back (x's lapsed there); before x renews again, z joins, lighter than x.
    await restore(observer, old);
    const z = await join({ group, memberId: 'z', weight: 5 });
    timeline.watch(z);
    await sleep(A + 4 * H);
    // Seen before the fix: the join dropped x as lapsed (and, x being the only member, forgot
    // the group), granted slot 0 to z at once, and x's next renewal, a millisecond later, found its
    // lease gone and took the slot back: two grants at once in Redis, x deactivated and activated
    // again with a new epoch. A renewal of x coming later would have let z deliver it.
    const log = await observer.xrange(keys.log, '-', '+');
    const granted = log.map(([, f]) => `${f[1]} ${f[3]}`).filter((e) => e.startsWith('activate'));
    expect(granted).toEqual(['activate x']);
    expect(timeline.of('x', 'deactivate')).toEqual([]);
    expect(timeline.maxConcurrentActive()).toBe(1);
  });
});
