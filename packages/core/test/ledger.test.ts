import { joinGroup, type Member } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { uniqueGroup, waitFor } from '@understudy/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { fileServer } from './helpers.js';

// S6's last line: a member never delivers an epoch it has seen released or revoked, whatever
// a server says. Here the server is fooled on purpose — its slots are put back as they were
// right after a grant that was since given back, with nothing else to show it — so only the
// member's own ledger stands between the stale grant and a second active.

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const { server, observer } = fileServer();
const members: Member[] = [];
afterAll(async () => {
  await Promise.allSettled(members.map((m) => m.leave()));
});

describe('the epoch ledger (S6)', () => {
  it('never delivers a grant the member gave back, even when its server reports it again', async () => {
    const group = uniqueGroup('ledger');
    const keys = groupKeys(group);
    const common = { redis: server().url, group, preparationInterval: 400, activationInterval: 1500 };
    let prepares = 0;
    let slowPrepareDone = false;
    // X renews often and its first prepare is slow: its first grant waits behind it.
    const x = await joinGroup({
      ...common,
      memberId: 'x',
      weight: 10,
      heartbeatInterval: 50,
      onPrepare: async () => {
        if (prepares++ > 0) return;
        await sleep(600);
        slowPrepareDone = true;
      },
    });
    // Y renews seldom: after the slots are put back, X's renewal comes first.
    const y = await joinGroup({ ...common, memberId: 'y', weight: 8, heartbeatInterval: 300 });
    members.push(x, y);
    const delivered: number[] = [];
    x.on('activate', (info) => delivered.push(info.epoch));

    const granted = await waitFor(
      async () => {
        const slot = await observer().hget(keys.slots, '0');
        return slot && (JSON.parse(slot) as { m: string }).m === 'x' ? (JSON.parse(slot) as { e: string }) : undefined;
      },
      'x to be granted a slot',
      5000,
      2,
    );
    const e1 = Number(granted.e);
    const slotsAtGrant = await observer().dumpBuffer(keys.slots);
    // X gives E1 back before delivering it; Y gets E2.
    await x.setWeight(5);
    await waitFor(() => y.isActive(), 'y to activate', 5000);

    // Once nothing queues X's actions, right after one of Y's renewals, the slots go back to X holding E1.
    await waitFor(() => slowPrepareDone, 'the slow prepare to settle', 5000);
    await new Promise<void>((resolve) => y.once('renewal', () => resolve()));
    await observer().restore(keys.slots, 0, slotsAtGrant as Buffer, 'REPLACE');
    await sleep(1000);
    expect(delivered).not.toContain(e1);
  });
});
