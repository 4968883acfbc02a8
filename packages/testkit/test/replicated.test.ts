import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { type ChaosProxy, type ReplicatedPair, startChaosProxy, startReplicatedPair, waitFor } from '../src/index.js';

const pairs: ReplicatedPair[] = [];
const proxies: ChaosProxy[] = [];
const clients: Redis[] = [];
afterEach(async () => {
  for (const client of clients.splice(0)) client.disconnect();
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await Promise.all(pairs.splice(0).map((p) => p.stop()));
});

describe('a replicated pair', () => {
  it('falls behind while its replication link is cut, and the promoted replica has only what it had applied', async () => {
    const pair = await startReplicatedPair();
    pairs.push(pair);
    await pair.master.admin('SET', 'before', '1');
    await waitFor(async () => (await pair.replica.admin('GET', 'before')) === '1', 'the replica to apply it', 5000);
    pair.cut();
    await pair.master.admin('SET', 'after', '2');
    expect(await pair.lagBytes()).toBeGreaterThan(0);
    await pair.master.kill('SIGKILL');
    const promoted = await pair.promote();
    expect(promoted).toBe(pair.replica);
    expect(pair.primary).toBe(pair.replica);
    expect(await promoted.admin('GET', 'before')).toBe('1');
    expect(await promoted.admin('GET', 'after')).toBe('');
    expect(await promoted.admin('SET', 'written', '3')).toBe('+OK');
  });

  it('catches up once the cut link is mended', async () => {
    const pair = await startReplicatedPair();
    pairs.push(pair);
    pair.cut();
    await pair.master.admin('SET', 'during', 'x');
    pair.mend();
    await waitFor(async () => (await pair.replica.admin('GET', 'during')) === 'x', 'the replica to catch up', 10_000);
    expect(await pair.lagBytes()).toBe(0);
  });
});

describe('a chaos proxy retargeted', () => {
  it('resets its connections and sends new ones to the new target', async () => {
    const pair = await startReplicatedPair();
    pairs.push(pair);
    await pair.master.admin('SET', 'who', 'master');
    await pair.replica.admin('CONFIG', 'SET', 'replica-read-only', 'no');
    await pair.replica.admin('SET', 'who', 'replica');
    const proxy = await startChaosProxy({ target: pair.master });
    proxies.push(proxy);
    const client = new Redis(proxy.url(), { maxRetriesPerRequest: 1, retryStrategy: () => 20 });
    client.on('error', () => undefined);
    clients.push(client);
    expect(await client.get('who')).toBe('master');
    proxy.retarget(pair.replica);
    expect(proxy.target.port).toBe(pair.replica.port);
    await waitFor(
      async () => (await client.get('who').catch(() => undefined)) === 'replica',
      'the client to reach the replica',
      5000,
    );
  });
});
