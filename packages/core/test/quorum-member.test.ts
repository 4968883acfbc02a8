import { type JoinOptions, joinGroup, type Member, monitorGroup } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import {
  type ChaosProxy,
  type RedisServer,
  startChaosProxy,
  startRedis,
  tappedRedis,
  uniqueGroup,
  waitFor,
} from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { FAST, hrNow, lateReplyProbe, MemberProcess } from './helpers.js';

// Quorum mode (DESIGN §9) end to end: members over three independent real servers, each member
// reaching them through chaos proxies of its own so that a test can cut any member's link to
// any server. Safety assertions count believers from the members' own events: no tolerance.

const A = FAST.activationInterval;
/**
 * Where a test asserts that nothing happens (no deactivation), the loaded 2-core machine must not
 * make a lease lapse by itself: longer intervals than FAST leave room for slow renewals.
 */
const STEADY = Object.freeze({ heartbeatInterval: 200, activationInterval: 2000 });

const servers: RedisServer[] = [];
beforeAll(async () => {
  servers.push(...(await Promise.all([startRedis(), startRedis(), startRedis()])));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** Every member's activations and deactivations, in the order they happened. */
class Believers {
  active = new Set<string>();
  most = 0;
  epochs: number[] = [];
  deactivations: { id: string; reason: string }[] = [];

  watch(member: Member): void {
    member.on('activate', ({ epoch }) => {
      this.active.add(member.id);
      this.most = Math.max(this.most, this.active.size);
      this.epochs.push(epoch);
    });
    member.on('deactivate', ({ reason }) => {
      this.active.delete(member.id);
      this.deactivations.push({ id: member.id, reason });
    });
  }
}

const members: Member[] = [];
const proxies: ChaosProxy[] = [];
afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

/** Joins over the three servers, each through a proxy of the member's own; returns the member and its links. */
async function join(
  believers: Believers,
  options: Partial<JoinOptions> & { group: string; memberId: string; weight: number },
): Promise<{ member: Member; links: ChaosProxy[] }> {
  const links = await Promise.all(servers.map((s) => startChaosProxy({ target: s })));
  proxies.push(...links);
  const member = await joinGroup({ ...FAST, ...options, redis: links.map((p) => p.url()) });
  members.push(member);
  believers.watch(member);
  return { member, links };
}

describe('quorum mode over three servers', () => {
  it('activates exactly one member, the best ranked, with an epoch a majority accepted; the monitor agrees', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const high = await join(b, { group, memberId: 'high', weight: 20 });
    const low = await join(b, { group, memberId: 'low', weight: 10 });
    await waitFor(() => high.member.isActive(), 'high active', 5000);
    const monitor = await monitorGroup({ redis: servers.map((s) => s.url), group });
    try {
      await waitFor(() => monitor.snapshot().activeCount === 1, 'the monitor to count one active');
      expect(monitor.snapshot().members.map((m) => [m.id, m.state, m.epoch])).toEqual([
        ['high', 'active', high.member.epoch],
        ['low', 'standby', undefined],
      ]);
    } finally {
      await monitor.close();
    }
    expect(low.member.isActive()).toBe(false);
    expect(b.most).toBe(1);
  });

  it('hands over on leave: the next member activates with a larger epoch', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = await join(b, { group, memberId: 'first', weight: 20 });
    const second = await join(b, { group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    const epoch = first.member.epoch as number;
    await first.member.leave();
    await waitFor(() => second.member.isActive(), 'second active', 5000);
    expect(second.member.epoch).toBeGreaterThan(epoch);
    expect(b.most).toBe(1);
  });

  it('hands over on leave at once: the next in line hears the freed slot and proposes, with no heartbeat in between', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    // A long heartbeat: a standby that waited for its next renewal would take seconds.
    const slow = { heartbeatInterval: 5000, activationInterval: 15_000 };
    const first = await join(b, { group, memberId: 'first', weight: 20, ...slow });
    const second = await join(b, { group, memberId: 'second', weight: 10, ...slow });
    await waitFor(() => first.member.isActive(), 'first active', 20_000);
    // Leave right after the standby's renewals: its next one is a whole heartbeat away.
    await new Promise((resolve) => second.member.once('renewal', resolve));
    const left = performance.now();
    await first.member.leave();
    await waitFor(() => second.member.isActive(), 'second active', 10_000);
    expect(performance.now() - left).toBeLessThan(slow.heartbeatInterval / 2);
    expect(b.most).toBe(1);
  });

  it('hands over on leave with one round trip of the standby: it proposes on the first announcement of the freed slot', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    // A heartbeat long enough that no regular renewal runs between the leave and the takeover.
    const slow = { heartbeatInterval: 3000, activationInterval: 7000 };
    const first = await join(b, { group, memberId: 'first', weight: 20, ...slow });
    const second = await join(b, { group, memberId: 'second', weight: 10, ...slow });
    await waitFor(() => first.member.isActive(), 'first active', 20_000);
    // The first grant may reach only Q servers (the third still quarantined for a ms more, its
    // group made a ms later); the holder's next renewal there adds it. Until then that server
    // frees nothing on the leave, and the standby has only the delayed servers' announcements.
    const slots = groupKeys(group).slots;
    const readers = servers.map((s) => new Redis(s.url));
    try {
      await waitFor(
        async () =>
          (await Promise.all(readers.map((r) => r.hget(slots, '0')))).every((s) => s?.includes('"m":"first"')),
        'every server to show the grant',
        10_000,
      );
    } finally {
      for (const reader of readers) reader.disconnect();
    }
    const shown = performance.now();
    // The standby reaches server 2 at once and servers 0 and 1 with a one-way delay D: the leave
    // reaches every server at once, and the announcements of 0 and 1 reach the standby D later;
    // a proposal sent then gets their grants at 3·D. Proposing on server 2's announcement gets
    // them at 2·D.
    const oneWay = 150;
    for (const link of second.links.slice(0, 2)) link.setDelay(oneWay);
    // A renewal on each server sent since every server showed the holder (each server renews
    // every H, a reply comes within 2·D): every latest reply arms the standby's takeover watch.
    // The leave goes right after a renewal reply, so that none of that server is in flight.
    await new Promise<void>((resolve) => {
      const renewed = () => {
        if (performance.now() < shown + slow.heartbeatInterval + 2 * oneWay) return;
        second.member.off('renewal', renewed);
        resolve();
      };
      second.member.on('renewal', renewed);
    });
    const left = performance.now();
    await first.member.leave();
    await waitFor(() => second.member.isActive(), 'second active', 10_000);
    expect(performance.now() - left).toBeLessThan(2.5 * oneWay);
    expect(b.most).toBe(1);
  });

  it('is not extended by a renewal reply that arrives after the quorum deadline passed: the member deactivates first', async () => {
    // S4 over K servers (rule 9 of the soak's checker, quorum-majority-loss seed 3109142134: a
    // reply handled 0.9 ms after the deadline, before the deadline timer ran). The jump happens
    // as a renewal request leaves, after the member took its t0.
    const probe = lateReplyProbe();
    const clients = servers.map((s) => tappedRedis(s.url, { onSend: probe.onSend }));
    try {
      const member = await joinGroup({
        ...STEADY,
        redis: clients,
        group: uniqueGroup('quorum-s4'),
        memberId: 'late',
        weight: 1,
        clock: probe.clock,
      });
      members.push(member);
      probe.watch(member);
      await waitFor(() => member.isActive(), 'the member to activate', 10_000);
      probe.arm();
      await waitFor(() => probe.seen.length > 0, 'the reply to the renewal sent at the jump', 5000);
      expect(probe.seen[0]).toBe('deactivate lease-lost');
    } finally {
      for (const client of clients) client.disconnect();
    }
  });

  it('fails over when the active member is cut off from every server, and the cut-off member demotes itself first', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = await join(b, { group, memberId: 'first', weight: 20 });
    const second = await join(b, { group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    const epoch = first.member.epoch as number;
    for (const link of first.links) link.blackhole(true);
    await waitFor(() => second.member.isActive(), 'second active after the failover', 10 * A);
    expect(b.deactivations).toContainEqual({ id: 'first', reason: 'lease-lost' });
    expect(second.member.epoch).toBeGreaterThan(epoch);
    expect(b.most).toBe(1);
  });

  it('fails over after a SIGKILL of the active member, only after its lease ran out', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = new MemberProcess({ url: servers.map((s) => s.url), group, memberId: 'first', weight: 20 });
    const activated = await first.waitFor('activate', 10_000);
    const second = await join(b, { group, memberId: 'second', weight: 10 });
    await first.kill('SIGKILL');
    await waitFor(() => second.member.isActive(), 'second active after the crash', 10 * A);
    const takenOver = hrNow();
    const leases = first.events.filter((e) => e.event === 'lease').map((e) => Number(e.deadline));
    // S1: the crashed member could have believed until its last lease deadline; nobody before.
    expect(takenOver).toBeGreaterThan(Math.max(...leases));
    expect(second.member.epoch).toBeGreaterThan(Number(activated.epoch));
  });

  it('a heavier member preempts the active: demote before promote, with a larger epoch', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const low = await join(b, { group, memberId: 'low', weight: 10 });
    await waitFor(() => low.member.isActive(), 'low active', 5000);
    const epoch = low.member.epoch as number;
    const high = await join(b, { group, memberId: 'high', weight: 20 });
    await waitFor(() => high.member.isActive(), 'high active', 5000);
    expect(b.deactivations).toEqual([{ id: 'low', reason: 'preempted' }]);
    expect(high.member.epoch).toBeGreaterThan(epoch);
    expect(b.most).toBe(1);
  });

  it('one server refusing the member (the group there re-formed in the other mode) does not expel it from the others', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const q = await join(b, { ...STEADY, group, memberId: 'q', weight: 20 });
    await waitFor(() => q.member.isActive(), 'q active', 10_000);
    const advisories: string[] = [];
    q.member.on('advisory', ({ code }) => advisories.push(code));
    // The group's keys vanish from one server, and a single-server member forms it there again.
    const first = servers[0] as RedisServer;
    const admin = new Redis(first.url);
    try {
      const keys = await admin.keys(`*{${group}}*`);
      await admin.del(...keys);
    } finally {
      admin.disconnect();
    }
    const single = await joinGroup({ ...STEADY, redis: first.url, group, memberId: 'single', weight: 5 });
    members.push(single);
    // Several renewals on the refusing server: a majority still holds the member.
    await new Promise((resolve) => setTimeout(resolve, 5 * STEADY.heartbeatInterval));
    expect(q.member.state).toBe('active');
    expect(q.member.isActive()).toBe(true);
    expect(b.deactivations).toEqual([]);
    expect(advisories).not.toContain('PARAM_MISMATCH');
  });

  it('keeps the active in place when one server is cut off from everyone', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = await join(b, { ...STEADY, group, memberId: 'first', weight: 20 });
    const second = await join(b, { ...STEADY, group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    first.links[2]?.blackhole(true);
    second.links[2]?.blackhole(true);
    await new Promise((resolve) => setTimeout(resolve, 2 * STEADY.activationInterval));
    expect(first.member.isActive()).toBe(true);
    expect(b.deactivations).toEqual([]);
    expect(b.epochs).toHaveLength(1);
  });

  it('an active that reaches only one server demotes itself by its deadline, and nobody else activates there', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = await join(b, { group, memberId: 'first', weight: 20 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    first.links[1]?.blackhole(true);
    first.links[2]?.blackhole(true);
    await waitFor(() => !first.member.isActive(), 'first to stop believing', 2 * A);
    await waitFor(() => b.deactivations.length === 1, 'the deactivate event', A);
    expect(b.deactivations).toEqual([{ id: 'first', reason: 'lease-lost' }]);
    // It still reaches one server only: it never activates again, and says why.
    await new Promise((resolve) => setTimeout(resolve, 2 * A));
    expect(first.member.isActive()).toBe(false);
    expect(b.epochs).toHaveLength(1);
  });

  it('a member that lost its lease while cut off never claims that epoch again once it reaches the servers', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = await join(b, { group, memberId: 'first', weight: 20 });
    const second = await join(b, { group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    const lost = first.member.epoch as number;
    // Cut from every server: its release of the lost epoch reaches none of them.
    for (const link of first.links) link.blackhole(true);
    await waitFor(() => second.member.isActive(), 'second active after the failover', 10 * A);
    expect(b.deactivations).toContainEqual({ id: 'first', reason: 'lease-lost' });
    for (const link of first.links) {
      link.reset();
      link.heal();
    }
    await waitFor(() => first.member.isActive(), 'first to preempt second once it reaches the servers', 10 * A);
    expect(first.member.epoch).toBeGreaterThan(lost);
    // No server granted the lost epoch back to it (a `reclaimed` of a retired epoch, which the
    // member must then give back, and which quarantines it for A on those servers).
    const log = await Promise.all(servers.map((s) => s.admin('XRANGE', `understudy:{${group}}:log`, '-', '+')));
    const reclaims = log.filter((text) => text.includes('reclaimed'));
    expect(reclaims).toEqual([]);
    expect(b.most).toBe(1);
  });

  it('N = 2, three members each reaching a different pair of servers: never three actives', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const joined: { member: Member; links: ChaosProxy[] }[] = [];
    for (const id of ['m0', 'm1', 'm2']) joined.push(await join(b, { group, memberId: id, weight: 10, activeGoal: 2 }));
    await waitFor(() => joined.filter((j) => j.member.isActive()).length === 2, 'two actives', 5000);
    // Member i loses server i: m0 reaches {1, 2}, m1 {0, 2}, m2 {0, 1}. Any two pairs share a server.
    joined.forEach((j, i) => {
      j.links[i]?.blackhole(true);
    });
    const deadline = performance.now() + 6 * A;
    let most = 0;
    while (performance.now() < deadline) {
      most = Math.max(most, joined.filter((j) => j.member.isActive()).length);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(most).toBeLessThanOrEqual(2);
    expect(b.most).toBeLessThanOrEqual(2);
  });

  it('a server restarting empty changes nothing for the active, and later epochs still grow', async () => {
    const group = uniqueGroup('quorum');
    const b = new Believers();
    const first = await join(b, { ...STEADY, group, memberId: 'first', weight: 20 });
    const second = await join(b, { ...STEADY, group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    const epoch = first.member.epoch as number;
    await servers[0]?.restart();
    await new Promise((resolve) => setTimeout(resolve, STEADY.activationInterval));
    expect(first.member.isActive()).toBe(true);
    expect(b.deactivations).toEqual([]);
    await first.member.leave();
    await waitFor(() => second.member.isActive(), 'second active', 10 * STEADY.activationInterval);
    expect(second.member.epoch).toBeGreaterThan(epoch);
    expect(b.most).toBe(1);
  });
});
