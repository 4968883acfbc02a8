import { type RedisServer, startRedis } from '@understudy/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FAST, memberFactory, uniqueGroup, waitFor } from './helpers.js';

// S2 across a loss of state that no member can paper over: the member that activates after
// the restart never held an epoch, so nothing it remembers can lift the new epoch.

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis();
});
afterAll(() => server.stop());
const join = memberFactory(() => server);

describe('fencing epochs (S2)', () => {
  it('strictly increase across a restart that lost every key, for a member that never held an epoch', async () => {
    const group = uniqueGroup('epochs');
    const first = await join({ group, memberId: 'first', weight: 10 });
    await waitFor(() => first.isActive(), 'the first member to activate', 5000);
    const before = first.epoch ?? 0;
    await first.leave();

    await server.restart({ keepData: false });
    const second = await join({ group, memberId: 'second', weight: 10 });
    await waitFor(() => second.isActive(), 'the second member to activate', 5 * FAST.activationInterval + 5000);
    expect(second.epoch).toBeGreaterThan(before);
  });
});
