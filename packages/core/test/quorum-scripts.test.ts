import { setTimeout as sleep } from 'node:timers/promises';
import { groupKeys } from '@understudy/core/testing';
import { uniqueGroup } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import type { ScriptArgs } from '../src/script-specs.js';
import { scripts } from '../src/scripts.js';
import { fileServer } from './helpers.js';

// quorum_renew.lua, the server's side of quorum mode (DESIGN §9), on one real server: slots
// granted only on a member's proposal, above the epoch floor, to a member ranked among the best
// here; the floor raised by what members saw elsewhere, and set again from TIME after a loss.

const { observer, server } = fileServer();
const A = 300;

function caller(group: string) {
  const keys = groupKeys(group);
  return (memberId: string, args: Partial<ScriptArgs<'quorum_renew'>> = {}) =>
    scripts.quorum_renew(observer(), keys, {
      channel: keys.events,
      memberId,
      weight: 10,
      activeGoal: 1,
      activationInterval: A,
      heartbeatInterval: 50,
      preparationInterval: 0,
      host: 'test',
      pid: 1,
      nonce: `nonce-${memberId}`,
      stamp: 0,
      knownFloor: 0,
      claimedEpoch: 0,
      claimedSlot: -1,
      proposedEpoch: 0,
      proposedSlot: -1,
      ...args,
    });
}

async function serverMicros(): Promise<number> {
  const [s, us] = await observer().time();
  return Number(s) * 1_000_000 + Number(us);
}

describe('quorum_renew.lua', () => {
  it('creates the group quarantined, with a floor from TIME in µs, and never grants a slot by ranking alone', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    const before = await serverMicros();
    const first = await renew('a');
    expect(first.view.role).toBe('standby');
    expect(first.view.quarantineUntil).toBeGreaterThan(first.view.serverNow);
    expect(first.floor).toBeGreaterThanOrEqual(before);
    expect(await observer().hget(groupKeys(group).config, 'quorum')).toBe('1');
    await sleep(A + 20);
    const later = await renew('a');
    // With one Redis the ranking alone would have granted the slot by now.
    expect(later.view).toMatchObject({ role: 'standby', epoch: 0, slotsHeld: 0 });
    expect(later).toMatchObject({ eligible: true, free: [0] });
  });

  it('grants a proposed slot and epoch above the floor, and raises the floor to it', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    const { floor } = await renew('a');
    await sleep(A + 20);
    const granted = await renew('a', { proposedEpoch: floor + 5, proposedSlot: 0 });
    expect(granted.view).toMatchObject({ role: 'active', epoch: floor + 5, slot: 0, reason: 'initial' });
    expect(granted.floor).toBe(floor + 5);
    expect(Number(await observer().get(groupKeys(group).floor))).toBe(floor + 5);
  });

  it('refuses a proposal at or below the floor, during a quarantine, for a taken slot, or from a member ranked out', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    const { floor } = await renew('a');
    // Quarantined: the group is new.
    expect((await renew('a', { proposedEpoch: floor + 1, proposedSlot: 0 })).view.role).toBe('standby');
    await sleep(A + 20);
    expect((await renew('a', { proposedEpoch: floor, proposedSlot: 0 })).view.role).toBe('standby');
    expect((await renew('a', { proposedEpoch: floor + 1, proposedSlot: 1 })).view.role).toBe('standby');
    expect((await renew('a', { proposedEpoch: floor + 1, proposedSlot: 0 })).view.role).toBe('active');
    // b ranks below the holder (equal weight, the holder first) and the slot is taken.
    const b = await renew('b', { proposedEpoch: floor + 2, proposedSlot: 0 });
    expect(b.view.role).toBe('standby');
    expect(b).toMatchObject({ eligible: false, free: [], floor: floor + 1 });
  });

  it('adds a grant a majority gave on a server that missed it: the floor the renewal carries rises after the proposal', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    const { floor } = await renew('a');
    await sleep(A + 20);
    const filled = await renew('a', { knownFloor: floor + 7, proposedEpoch: floor + 7, proposedSlot: 0 });
    expect(filled.view).toMatchObject({ role: 'active', epoch: floor + 7 });
    expect(filled.floor).toBe(floor + 7);
  });

  it('raises the floor to the epoch the member holds, without a quarantine', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    const { floor } = await renew('a');
    await sleep(A + 20);
    const raised = await renew('a', { knownFloor: floor + 1000 });
    expect(raised.floor).toBe(floor + 1000);
    expect(raised.view.quarantineUntil).toBeLessThanOrEqual(raised.view.serverNow);
    expect((await renew('a', { proposedEpoch: floor + 1000, proposedSlot: 0 })).view.role).toBe('standby');
    expect((await renew('a', { proposedEpoch: floor + 1001, proposedSlot: 0 })).view.role).toBe('active');
  });

  it('a lost floor is set again from TIME and quarantines the server for A (S6)', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    await renew('a');
    await sleep(A + 20);
    await observer().del(groupKeys(group).floor);
    const before = await serverMicros();
    const after = await renew('a');
    expect(after.floor).toBeGreaterThanOrEqual(before);
    expect(after.view.quarantineUntil).toBeGreaterThan(after.view.serverNow);
    expect((await renew('a', { proposedEpoch: after.floor + 1, proposedSlot: 0 })).view.role).toBe('standby');
  });

  it('ranks equals by the join stamp, not by who reached this server first', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    await renew('first-here', { stamp: 2_000 });
    await renew('stamped-earlier', { stamp: 1_000 });
    await sleep(A + 20);
    // Their leases ran out meanwhile: both join again, in the same order.
    await renew('first-here', { stamp: 2_000 });
    await renew('stamped-earlier', { stamp: 1_000 });
    expect((await renew('first-here', { stamp: 2_000 })).eligible).toBe(false);
    expect((await renew('stamped-earlier', { stamp: 1_000 })).eligible).toBe(true);
  });

  it('asks a holder to release when a heavier member ranks above it; frees nothing until it releases', async () => {
    const group = uniqueGroup('quorum-script');
    const renew = caller(group);
    const { floor } = await renew('low');
    await sleep(A + 20);
    await renew('low', { proposedEpoch: floor + 1, proposedSlot: 0 });
    const heavy = await renew('heavy', { weight: 20, proposedEpoch: floor + 2, proposedSlot: 0 });
    expect(heavy.view.role).toBe('standby');
    expect(heavy).toMatchObject({ eligible: true, free: [] });
    const low = await renew('low', { claimedEpoch: floor + 1, claimedSlot: 0 });
    expect(low.view).toMatchObject({ role: 'releasing', epoch: floor + 1, reason: 'preempted' });
    // The holder releases; nothing is granted until the heavier member proposes.
    const keys = groupKeys(group);
    const released = await scripts.release(observer(), keys, {
      channel: keys.events,
      memberId: 'low',
      epoch: floor + 1,
      reason: 'preempted',
      preparationInterval: 0,
      nonce: 'nonce-low',
    });
    expect(released.role).toBe('standby');
    expect(await observer().hlen(keys.slots)).toBe(0);
    const next = await renew('heavy', { weight: 20, proposedEpoch: floor + 2, proposedSlot: 0 });
    expect(next.view).toMatchObject({ role: 'active', epoch: floor + 2, slot: 0, reason: 'handover' });
  });

  it('a preparing member granted its proposal is announced active only, not also standby (rank-changed)', async () => {
    const group = uniqueGroup('quorum-script');
    const keys = groupKeys(group);
    const renew = caller(group);
    const P = 100;
    const { floor } = await renew('a');
    await sleep(A + 20);
    await renew('a', { proposedEpoch: floor + 1, proposedSlot: 0 });
    await renew('b', { preparationInterval: P });
    await sleep(P + 20);
    // The holder's last renewal is older than P here: the next in line is told to prepare.
    expect((await renew('b', { preparationInterval: P })).view.role).toBe('preparing');
    const subscriber = new Redis(server().url, { connectionName: 'test-subscriber' });
    const heard: unknown[][] = [];
    try {
      subscriber.on('smessage', (_channel: string, message: string) => heard.push(...JSON.parse(message).c));
      await subscriber.ssubscribe(keys.events);
      await sleep(A);
      // The holder's lease lapsed: the same call expires it and grants the proposal.
      const granted = await renew('b', { preparationInterval: P, proposedEpoch: floor + 2, proposedSlot: 0 });
      expect(granted.view).toMatchObject({ role: 'active', epoch: floor + 2, slot: 0 });
      await sleep(50);
    } finally {
      subscriber.disconnect();
    }
    expect(heard.filter((change) => change[0] === 'b')).toEqual([['b', 'active', String(floor + 2), 0, 'failover']]);
    expect(await observer().hget(keys.config, 'preparing')).toBe('');
  });
});
