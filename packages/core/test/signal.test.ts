import type { ActivateInfo, DeactivateInfo, Member } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { FAST, fileServer, memberFactory, uniqueGroup, waitFor } from './helpers.js';

// onActivate's `signal` aborts when that activation ends, before `deactivate` is delivered,
// with the epoch and the deactivate reason: application work can stop without polling.

const { server, observer } = fileServer();
const join = memberFactory(server);

interface Seen {
  activations: ActivateInfo[];
  /** For each deactivate event: whether that epoch's signal had already aborted, and its reason. */
  deactivations: (DeactivateInfo & { abortedBefore: boolean; abortReason: unknown })[];
}

function watch(member: Member): Seen {
  const seen: Seen = { activations: [], deactivations: [] };
  member.on('activate', (info) => seen.activations.push(info));
  member.on('deactivate', (info) => {
    const signal = seen.activations.find((a) => a.epoch === info.epoch)?.signal;
    seen.deactivations.push({ ...info, abortedBefore: signal?.aborted ?? false, abortReason: signal?.reason });
  });
  return seen;
}

describe('the activation signal', () => {
  it('aborts when the member is preempted, before deactivate, naming the epoch and reason', async () => {
    const group = uniqueGroup('signal');
    let handedSignal: AbortSignal | undefined;
    const a = await join({
      group,
      memberId: 'a',
      weight: 10,
      onActivate: ({ signal }) => {
        handedSignal = signal;
      },
    });
    const seen = watch(a);
    await waitFor(() => a.isActive(), 'a to activate', 5000);
    expect(handedSignal?.aborted).toBe(false);
    expect(seen.activations[0]?.signal).toBe(handedSignal);
    await join({ group, memberId: 'b', weight: 20 });
    await waitFor(() => seen.deactivations.length > 0, 'a to be preempted', 5000);
    const [ended] = seen.deactivations;
    expect(ended).toMatchObject({ reason: 'preempted', abortedBefore: true });
    expect(ended?.abortReason).toMatchObject({
      name: 'ActivationEndedError',
      epoch: ended?.epoch,
      reason: 'preempted',
    });
    expect(handedSignal?.aborted).toBe(true);
  });

  it('aborts on leave, and each activation has a signal of its own', async () => {
    const group = uniqueGroup('signal');
    const a = await join({ group, memberId: 'a', weight: 10 });
    const seen = watch(a);
    await waitFor(() => a.isActive(), 'a to activate', 5000);
    const b = await join({ group, memberId: 'b', weight: 20 });
    await waitFor(() => b.isActive(), 'b to take over', 5000);
    await b.leave();
    await waitFor(() => a.isActive(), 'a to activate again', 5000);
    const [first, second] = seen.activations;
    expect(first?.signal.aborted).toBe(true);
    expect(second?.signal.aborted).toBe(false);
    expect(second?.epoch).toBeGreaterThan(first?.epoch ?? 0);
    await a.leave();
    expect(second?.signal.aborted).toBe(true);
    expect(second?.signal.reason).toMatchObject({ epoch: second?.epoch, reason: 'leave' });
  });

  it('aborts when the lease runs out: Redis stops answering renewals', async () => {
    const group = uniqueGroup('signal');
    const a = await join({ group, memberId: 'a', weight: 10 });
    const seen = watch(a);
    await waitFor(() => a.isActive(), 'a to activate', 5000);
    // Renewals (scripts that write) wait for longer than the activation interval.
    await observer().call('CLIENT', 'PAUSE', String(3 * FAST.activationInterval), 'WRITE');
    await waitFor(() => seen.deactivations.length > 0, 'a to deactivate', 5000);
    const [ended] = seen.deactivations;
    expect(ended).toMatchObject({ reason: 'lease-lost', abortedBefore: true });
    expect(ended?.abortReason).toMatchObject({ epoch: ended?.epoch, reason: 'lease-lost' });
    await observer().call('CLIENT', 'UNPAUSE');
  });
});
