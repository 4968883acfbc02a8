import { type JoinOptions, joinGroup, type Member } from '@understudy/core';
import {
  type ChaosProxy,
  type RedisServer,
  startChaosProxy,
  startRedis,
  uniqueGroup,
  waitFor,
} from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hrNow, MemberProcess } from './helpers.js';

// Prepare hints in quorum mode (DESIGN §1 "Prepare", §9): the next in line gets `prepare` once Q
// servers see an active's last renewal older than P, has it withdrawn once fewer than Q do, and
// with P > 0 every activate is preceded by a prepare. Three independent real servers.

/** P well inside (H, A): the window between prepare and takeover is A − P, wide on a loaded machine. */
const PREPARED = Object.freeze({ heartbeatInterval: 100, preparationInterval: 300, activationInterval: 1200 });

const servers: RedisServer[] = [];
beforeAll(async () => {
  servers.push(...(await Promise.all([startRedis(), startRedis(), startRedis()])));
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

const members: Member[] = [];
const proxies: ChaosProxy[] = [];
afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});

type Seen =
  | { what: 'prepare'; reason: string; t: number }
  | { what: 'activate'; t: number }
  | { what: 'deactivate'; t: number }
  | { what: 'state'; state: string; t: number };

/** Joins over the three servers, each through a proxy of the member's own; records what it is told, in order. */
async function join(
  options: Partial<JoinOptions> & { group: string; memberId: string; weight: number },
): Promise<{ member: Member; links: ChaosProxy[]; seen: Seen[] }> {
  const links = await Promise.all(servers.map((s) => startChaosProxy({ target: s })));
  proxies.push(...links);
  const member = await joinGroup({ ...PREPARED, ...options, redis: links.map((p) => p.url()) });
  members.push(member);
  const seen: Seen[] = [];
  member.on('prepare', ({ reason }) => seen.push({ what: 'prepare', reason, t: hrNow() }));
  member.on('activate', () => seen.push({ what: 'activate', t: hrNow() }));
  member.on('deactivate', () => seen.push({ what: 'deactivate', t: hrNow() }));
  member.on('state', ({ to }) => seen.push({ what: 'state', state: to, t: hrNow() }));
  return { member, links, seen };
}

/** The prepare and activate actions, in order. */
function actions(seen: Seen[]): string[] {
  return seen.flatMap((s) =>
    s.what === 'prepare' ? [`prepare:${s.reason}`] : s.what === 'activate' ? ['activate'] : [],
  );
}

describe('prepare hints in quorum mode', () => {
  it('a standby gets prepare (lease-aging) before activate when the active process is SIGKILLed', async () => {
    const group = uniqueGroup('qprep');
    const first = new MemberProcess({
      url: servers.map((s) => s.url),
      group,
      memberId: 'first',
      weight: 20,
      ...PREPARED,
    });
    const activated = await first.waitFor('activate', 10_000);
    const second = await join({ group, memberId: 'second', weight: 10 });
    await new Promise((resolve) => second.member.once('renewal', resolve));
    await first.kill('SIGKILL');
    await waitFor(() => second.member.isActive(), 'second active after the crash', 10 * PREPARED.activationInterval);
    const leases = first.events.filter((e) => e.event === 'lease').map((e) => Number(e.deadline));
    const activation = second.seen.find((s) => s.what === 'activate');
    // S1: nobody activates before the crashed member's last lease deadline.
    expect(activation?.t).toBeGreaterThan(Math.max(...leases));
    expect(second.member.epoch).toBeGreaterThan(Number(activated.epoch));
    // The lease aged past P on a majority before it lapsed: the hint came first, and no second
    // prepare was needed right before the activate.
    const told = actions(second.seen);
    expect(told.at(-1)).toBe('activate');
    expect(told.at(-2)).toBe('prepare:lease-aging');
  });

  it('a planned handover (leave) delivers prepare immediately before activate', async () => {
    const group = uniqueGroup('qprep');
    const steady = { heartbeatInterval: 200, preparationInterval: 600, activationInterval: 2000 };
    const first = await join({ ...steady, group, memberId: 'first', weight: 20 });
    const second = await join({ ...steady, group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    await new Promise((resolve) => second.member.once('renewal', resolve));
    await first.member.leave();
    await waitFor(() => second.member.isActive(), 'second active', 10_000);
    expect(actions(second.seen).slice(-2)).toEqual(['prepare:activation', 'activate']);
    expect(actions(first.seen)).toEqual(['prepare:activation', 'activate']);
  });

  it('a prepare is withdrawn when the active renews again before its lease lapses', async () => {
    const group = uniqueGroup('qprep');
    // A long A: the active, cut off for well over P, keeps its lease and renews again after.
    const slow = { heartbeatInterval: 100, preparationInterval: 400, activationInterval: 4000 };
    const first = await join({ ...slow, group, memberId: 'first', weight: 20 });
    const second = await join({ ...slow, group, memberId: 'second', weight: 10 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    await new Promise((resolve) => second.member.once('renewal', resolve));
    for (const link of first.links) link.blackhole(true);
    await waitFor(() => second.member.state === 'preparing', 'second preparing', slow.activationInterval);
    for (const link of first.links) link.heal();
    await waitFor(() => second.member.state === 'standby', 'the prepare withdrawn', slow.activationInterval);
    expect(first.member.isActive()).toBe(true);
    expect(first.seen.filter((s) => s.what === 'deactivate')).toEqual([]);
    expect(actions(second.seen)).toEqual(['prepare:lease-aging']);
    const states = second.seen.flatMap((s) => (s.what === 'state' ? [s.state] : []));
    expect(states).toEqual(['preparing', 'standby']);
  });

  it('no prepare with P = 0: neither before a failover nor on a leave', async () => {
    const group = uniqueGroup('qprep');
    const unprepared = { heartbeatInterval: 100, preparationInterval: 0, activationInterval: 1200 };
    const first = await join({ ...unprepared, group, memberId: 'first', weight: 20 });
    const second = await join({ ...unprepared, group, memberId: 'second', weight: 10 });
    const third = await join({ ...unprepared, group, memberId: 'third', weight: 5 });
    await waitFor(() => first.member.isActive(), 'first active', 5000);
    for (const link of first.links) link.blackhole(true);
    await waitFor(
      () => second.member.isActive(),
      'second active after the failover',
      10 * unprepared.activationInterval,
    );
    await second.member.leave();
    await waitFor(() => third.member.isActive(), 'third active after the leave', 10_000);
    for (const m of [first, second, third]) {
      expect(m.seen.filter((s) => s.what === 'prepare')).toEqual([]);
      expect(m.seen.filter((s) => s.what === 'state' && s.state === 'preparing')).toEqual([]);
    }
  });
});
