import { describe, expect, it } from 'vitest';
import { EpochLedger } from '../src/member/ledger.js';
import { GroupView } from '../src/member/view.js';
import type { MemberView } from '../src/scripts.js';
import { standbyView } from './helpers.js';

// The pure parts of the member the decision table decides from, without Redis: the epoch
// ledger and the group view.

describe('the epoch ledger', () => {
  it('never delivers an epoch at or below its floor', () => {
    const ledger = new EpochLedger();
    ledger.retire(7);
    expect(ledger.deliverable(7)).toBe(false);
    expect(ledger.deliverable(8)).toBe(true);
    expect(() => ledger.hold(6, 0, 'initial')).toThrow(/not deliverable/);
  });

  it('retires an epoch when it is delivered, and revoked pending ones', () => {
    const ledger = new EpochLedger();
    ledger.pend(3);
    ledger.revoke(3);
    expect(ledger.pending).toBeUndefined();
    expect(ledger.deliverable(3)).toBe(false);
    ledger.pend(4);
    const held = ledger.hold(4, 0, 'failover');
    expect(ledger.pending).toBeUndefined();
    expect(ledger.floor).toBe(4);
    expect(ledger.deliverable(5)).toBe(false); // one held at a time
    expect(held.signal.aborted).toBe(false);
  });

  it('aborts the activation’s signal when it ends, with the reason, and settles until its handler did', () => {
    const ledger = new EpochLedger();
    const held = ledger.hold(9, 1, 'initial');
    const dropped = ledger.drop('preempted');
    expect(dropped?.epoch).toBe(9);
    expect(held.signal.aborted).toBe(true);
    expect(held.signal.reason).toMatchObject({ epoch: 9, reason: 'preempted' });
    expect(ledger.held).toBeUndefined();
    expect(ledger.isSettling(9)).toBe(true);
    ledger.settled(9);
    expect(ledger.isSettling(9)).toBe(false);
    expect(ledger.drop('leave')).toBeUndefined();
  });

  it('lets one release of an epoch run at a time', () => {
    const ledger = new EpochLedger();
    expect(ledger.beginRelease(2)).toBe(true);
    expect(ledger.beginRelease(2)).toBe(false);
    ledger.endRelease(2);
    expect(ledger.beginRelease(2)).toBe(true);
  });
});

describe('the group view', () => {
  const reply = (over: Partial<MemberView> = {}): MemberView =>
    standbyView({ version: 4, activationInterval: 3000, heartbeatInterval: 1000, incarnation: 77, ...over });

  const announcement = (incarnation: number, version: number, member = 'other') => ({
    incarnation,
    version,
    changes: new Map([[member, { role: 'standby', epoch: 0, slot: -1, reason: '' }]]),
  });

  it('sends back what join and renewal replies said, never what other replies said (S6)', () => {
    const view = new GroupView(1);
    expect(view.apply(reply(), 'renewal')).toBe(true);
    expect(view.knowledge(0)).toEqual({ incarnation: 77, version: 4, epochFloor: 0, leaseEnd: 1_003_000 });
    expect(view.apply(reply({ version: 9, incarnation: 80 }), 'other')).toBe(false);
    expect(view.knowledge(0)).toMatchObject({ incarnation: 77, version: 4 });
    expect(view.apply(reply({ role: 'gone' }), 'join')).toBe(false);
    expect(view.knowledge(0).leaseEnd).toBe(0);
  });

  it('keeps the highest epoch it was told of for itself, and what it holds', () => {
    const view = new GroupView(1);
    view.apply(reply({ role: 'active', epoch: 12, slot: 0 }), 'renewal');
    view.apply(reply({ role: 'standby' }), 'renewal');
    expect(view.knowledge(0).epochFloor).toBe(12);
    expect(view.knowledge(15).epochFloor).toBe(15);
  });

  it('sends no version while what it holds differs from what its last reply gave it: only a full renewal settles that', () => {
    const view = new GroupView(1);
    view.apply(reply({ role: 'active', epoch: 12, slot: 0 }), 'renewal');
    expect(view.knowledge(12).version).toBe(4);
    // It deactivated on its own (lease lost), its release perhaps lost with the connection: the
    // server may still list it for slot 0, which a steady reply would leave so.
    expect(view.knowledge(0).version).toBe(-1);
    expect(view.knowledge(13).version).toBe(-1);
    view.apply(reply({ role: 'releasing', epoch: 12, slot: 0, version: 5 }), 'renewal');
    expect(view.knowledge(12).version).toBe(5);
    view.apply(reply({ role: 'standby', version: 6 }), 'renewal');
    expect(view.knowledge(0).version).toBe(6);
    // Holding what a standby's view does not show (an activation it has not seen confirmed).
    expect(view.knowledge(12).version).toBe(-1);
  });

  it('completes a steady renewal reply from the latest join or renewal view, never from another script’s', () => {
    const view = new GroupView(1);
    expect(() => view.complete({ steady: true, serverNow: 1_000_500, watchDeadline: 0 })).toThrow(/no view yet/);
    view.apply(reply({ role: 'active', epoch: 12, slot: 0, rejoined: true, watchDeadline: 999_000 }), 'renewal');
    view.apply(reply({ role: 'standby', version: 5 }), 'other');
    const steady = view.complete({ steady: true, serverNow: 1_000_500, watchDeadline: 0 });
    expect(steady).toEqual(reply({ role: 'active', epoch: 12, slot: 0, serverNow: 1_000_500 }));
    view.apply(steady, 'renewal');
    // The lease ends one A after the steady reply's time, as after any renewal (S6 sends it back).
    expect(view.knowledge(12)).toEqual({ incarnation: 77, version: 4, epochFloor: 12, leaseEnd: 1_003_500 });
    expect(view.server).toMatchObject({ role: 'active', epoch: 12, confirmed: true });
    const full = reply({ version: 6 });
    expect(view.complete(full)).toBe(full);
  });

  it('only a renewal reply is confirmed: others may not deliver an activation', () => {
    const view = new GroupView(1);
    view.apply(reply({ role: 'active', epoch: 3, slot: 0 }), 'other');
    expect(view.server.confirmed).toBe(false);
    view.apply(reply({ role: 'active', epoch: 3, slot: 0 }), 'renewal');
    expect(view.server.confirmed).toBe(true);
  });

  it('renews on an announcement that names the member or leaves a gap, and on nothing older (S7)', () => {
    const view = new GroupView(1);
    view.apply(reply(), 'renewal'); // heard: incarnation 77, version 4
    expect(view.hear(announcement(77, 4, 'me'), 'me')).toBe(false); // not newer
    expect(view.hear(announcement(77, 5), 'me')).toBe(false); // the next one, about another member
    expect(view.hear(announcement(77, 6, 'me'), 'me')).toBe(true); // names it
    expect(view.hear(announcement(77, 8), 'me')).toBe(true); // a gap: 7 was missed
    expect(view.hear(announcement(78, 1), 'me')).toBe(true); // another incarnation
  });

  it('is deafened by a forged future announcement only until the next reply (F15)', () => {
    const view = new GroupView(1);
    view.apply(reply(), 'renewal');
    expect(view.hear(announcement(77, 1_000_000), 'me')).toBe(true);
    expect(view.hear(announcement(77, 5, 'me'), 'me')).toBe(false);
    view.apply(reply(), 'renewal');
    expect(view.hear(announcement(77, 5, 'me'), 'me')).toBe(true);
  });
});
