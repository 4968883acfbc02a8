import { ConfigError, joinGroup, type Member } from '@understudy/core';
import { SENTINEL_REPLICATION, type SentinelSet, startSentinelSet } from '@understudy/testkit';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { uniqueGroup } from './helpers.js';

// The partitioned old master (docs/OPERATIONS.md): under Sentinel a member joins only if the
// master refuses writes once cut off from its replicas, before the Sentinels can promote one.
const intervals = { heartbeatInterval: 100, activationInterval: 1000 };

let set: SentinelSet;
const members: Member[] = [];
beforeAll(async () => {
  set = await startSentinelSet();
}, 60_000);
afterAll(() => set?.stop());
afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
  const master = await set.master();
  await master.admin('CONFIG', 'SET', 'min-replicas-to-write', String(SENTINEL_REPLICATION.minReplicasToWrite));
  await master.admin('CONFIG', 'SET', 'min-replicas-max-lag', String(SENTINEL_REPLICATION.minReplicasMaxLagS));
});

function join(redisOptions: Record<string, unknown> = {}, logger?: pino.Logger): Promise<Member> {
  return joinGroup({
    redis: { sentinels: set.sentinelAddresses, name: set.masterName, ...redisOptions },
    group: uniqueGroup('guard'),
    weight: 10,
    ...intervals,
    ...(logger ? { logger } : {}),
  }).then((member) => {
    members.push(member);
    return member;
  });
}

describe('joining through Sentinel', () => {
  it('succeeds when down-after ≥ (min-replicas-max-lag + 2) s and the master needs a replica to write', async () => {
    const member = await join();
    expect(member.state).not.toBe('left');
  });

  it('is refused with a ConfigError naming min-replicas-to-write when the master takes writes without replicas', async () => {
    await (await set.master()).admin('CONFIG', 'SET', 'min-replicas-to-write', '0');
    const refusal = await join().catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as ConfigError).field).toBe('min-replicas-to-write');
    expect((refusal as Error).message).toMatch(/set min-replicas-to-write 1/);
  });

  it('is refused with a ConfigError saying what to set when min-replicas-max-lag + 2 s exceeds down-after', async () => {
    await (await set.master()).admin('CONFIG', 'SET', 'min-replicas-max-lag', '2');
    const refusal = await join().catch((error: unknown) => error);
    expect(refusal).toBeInstanceOf(ConfigError);
    expect((refusal as ConfigError).field).toBe('min-replicas-max-lag');
    const downAfter = SENTINEL_REPLICATION.downAfterMs;
    expect((refusal as Error).message).toContain(`min-replicas-max-lag ≤ ${Math.floor((downAfter - 2000) / 1000)}`);
    expect((refusal as Error).message).toContain('down-after-milliseconds ≥ 4000');
  });

  it('succeeds and says what it could not check when the ACL refuses CONFIG GET', async () => {
    const master = await set.master();
    await master.admin('ACL', 'SETUSER', 'guard', 'on', '>guard-pw', '~*', '&*', '+@all', '-config');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => lines.push(line) });
    const member = await join({ username: 'guard', password: 'guard-pw' }, logger);
    expect(member.state).not.toBe('left');
    expect(lines.join('\n')).toMatch(
      /could not verify that down-after-milliseconds ≥ 1000 × \(min-replicas-max-lag \+ 2\)/,
    );
  });
});
