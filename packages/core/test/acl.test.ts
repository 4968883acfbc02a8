import { readdirSync, readFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import {
  type ActivateInfo,
  type Advisory,
  aclRules,
  ConfigError,
  describeGroup,
  joinGroup,
  MEMBER_COMMANDS,
  MONITOR_COMMANDS,
  type Monitor,
  monitorGroup,
  PermissionError,
  publish,
  readHistory,
} from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { globEscape } from '../src/acl.js';
import { commitMessage } from '../src/feed/commit.js';
import { FeedReader } from '../src/feed/reader.js';
import { FAST, MemberProcess, memberFactory, uniqueGroup, waitFor } from './helpers.js';

const A = FAST.activationInterval;
/** How much later than due a loaded 2-core machine may get something done. */
const LATE_MS = 1000;
const PASSWORD = 'acl-test-password';

/** Two groups, each with a member user and a monitor user from `aclRules`. */
const groupA = uniqueGroup('acl-a');
const groupB = uniqueGroup('acl-b');
const rulesA = aclRules({ group: groupA });
const rulesB = aclRules({ group: groupB });

let server: RedisServer;
beforeAll(async () => {
  server = await startRedis({
    acl: [rulesA.member, rulesA.monitor, rulesB.member, rulesB.monitor].map(
      (u) => `user ${u.user} ${u.rules.join(' ')} >${PASSWORD}`,
    ),
    // A replica syncs at once (durability 'replicated' below waits for it).
    config: { 'repl-diskless-sync-delay': '0' },
  });
});
afterAll(() => server?.stop());

const urlOf = (user: string) => `redis://${user}:${PASSWORD}@127.0.0.1:${server.port}`;
const join = memberFactory(() => server);

const monitors: Monitor[] = [];
afterEach(async () => {
  await Promise.allSettled(monitors.splice(0).map((m) => m.close()));
});

async function watch(group: string, user: string): Promise<Monitor> {
  const monitor = await monitorGroup({ redis: urlOf(user), group });
  monitors.push(monitor);
  return monitor;
}

/** The server's connections logged in as `user`. */
async function connectionsOf(user: string): Promise<string[]> {
  return (await server.admin('CLIENT', 'LIST')).split('\n').filter((line) => line.includes(` user=${user} `));
}

/** How many commands, keys and channels ACL has refused so far (INFO stats). */
async function deniedCount(): Promise<number> {
  const stats = await server.admin('INFO', 'stats');
  return [...stats.matchAll(/^acl_access_denied_\w+:(\d+)/gm)].reduce((sum, m) => sum + Number(m[1]), 0);
}

/** The error of a call that must fail. */
async function failure(call: () => Promise<unknown>): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('the call succeeded; expected it to fail');
}

describe('the rules aclRules prints', () => {
  it('grant the member user every command the member scripts run, and the monitor user those of observe.lua', () => {
    const lua = joinPath(import.meta.dirname, '../src/lua');
    const called = (file: string) =>
      [...readFileSync(joinPath(lua, file), 'utf8').matchAll(/(?:call\(\s*|\{\s*)'([A-Z]+)'/g)].map((m) =>
        (m[1] as string).toLowerCase(),
      );
    const memberScripts = readdirSync(lua).filter((f) => f.endsWith('.lua') && f !== 'observe.lua');
    expect(memberScripts.length).toBeGreaterThan(5);
    for (const command of new Set(memberScripts.flatMap(called))) expect(MEMBER_COMMANDS).toContain(command);
    for (const command of new Set(called('observe.lua'))) expect(MONITOR_COMMANDS).toContain(command);
    expect(called('lib.lua')).toContain('xadd'); // the XADD built as an argument list
  });

  it('give the monitor read-only key access and no command that writes', () => {
    expect(rulesA.monitor.rules).toContain(`%R~understudy:{${groupA}}:*`);
    expect(rulesA.monitor.rules.some((r) => r.startsWith('~'))).toBe(false);
    for (const write of ['+fcall', '+eval', '+evalsha', '+hset', '+xadd', '+del', '+set', '+spublish']) {
      expect(rulesA.monitor.rules).not.toContain(write);
    }
  });

  it('start from reset, so that applying them again replaces what the user had', () => {
    expect(rulesA.member.rules.slice(0, 3)).toEqual(['reset', 'resetchannels', 'on']);
    expect(rulesA.member.rules).toContain(`&understudy:{${groupA}}:events`);
  });

  it('refuse a group name, prefix or user name that is not allowed, naming it', () => {
    for (const [options, field] of [
      [{ group: 'a*' }, 'group'],
      [{ group: 'a[b]' }, 'group'],
      [{ group: '' }, 'group'],
      [{ group: 'ok', prefix: 'p?' }, 'prefix'],
      [{ group: 'ok', memberUser: 'has space' }, 'memberUser'],
      [{ group: 'ok', monitorUser: '' }, 'monitorUser'],
    ] as const) {
      const error = (() => {
        try {
          aclRules(options);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ field });
    }
  });

  it('escape glob characters so that a pattern matches only its literal name (checked by Redis itself)', async () => {
    const literal = 'p*q?r[s]t\\u';
    const user = 'glob-check';
    await server.admin(
      'ACL',
      'SETUSER',
      user,
      'reset',
      'on',
      '+get',
      `~${globEscape(literal)}`,
      `&${globEscape(literal)}`,
    );
    expect(await server.admin('ACL', 'DRYRUN', user, 'GET', literal)).toBe('+OK');
    for (const other of ['pXqYr[s]t\\u', 'pq?r[s]t\\u', 'p*qYr[s]t\\u', 'p*q?rst\\u', 'p*q?r[s]tu']) {
      expect(await server.admin('ACL', 'DRYRUN', user, 'GET', other)).toMatch(/no permissions to access/);
    }
    expect(await server.admin('ACL', 'DELUSER', user)).toBe(':1');
  });
});

describe('a group under its own users', () => {
  it('runs members and a monitor under the member and monitor users: join, handover, crash failover, counts', async () => {
    const redis = urlOf(rulesA.member.user);
    const first = await join({ group: groupA, memberId: 'first', weight: 30, redis });
    const monitor = await watch(groupA, rulesA.monitor.user);
    await waitFor(() => first.isActive(), 'first active', A * 2 + LATE_MS);
    const crasher = new MemberProcess({ url: redis, group: groupA, memberId: 'crasher', weight: 20 });
    await crasher.waitFor('joined', 20_000);
    const last = await join({ group: groupA, memberId: 'last', weight: 10, redis });
    await waitFor(
      () =>
        monitor
          .snapshot()
          .members.map((m) => `${m.id}:${m.state}`)
          .join(' ') === 'first:active crasher:standby last:standby',
      'the monitor to show the three members',
    );

    await first.leave();
    await crasher.waitFor('activate', A + LATE_MS);
    await waitFor(() => monitor.snapshot().members[0]?.id === 'crasher', 'the monitor to show crasher active');
    expect(monitor.snapshot().activeCount).toBe(1);

    await crasher.kill('SIGKILL');
    await waitFor(() => last.isActive(), 'last active after the crash', A * 2 + LATE_MS);
    await waitFor(
      () =>
        monitor
          .snapshot()
          .members.map((m) => `${m.id}:${m.state}`)
          .join(' ') === 'last:active',
      'the monitor to show last alone and active',
    );

    const described = await describeGroup({ redis: urlOf(rulesA.monitor.user), group: groupA });
    expect(described.activeCount).toBe(1);
    const history = await readHistory({ redis: urlOf(rulesA.monitor.user), group: groupA });
    expect(history.map((t) => t.type)).toContain('lapse');
  });

  it("delivers activate with durability 'replicated' (WAIT) under the member user", async () => {
    const replica = await startRedis({ config: { replicaof: ['127.0.0.1', String(server.port)] } });
    try {
      await waitFor(
        async () => (await replica.admin('INFO', 'replication')).includes('master_link_status:up'),
        'the replica to sync',
        10_000,
      );
      const group = groupA;
      const member = await join({
        group,
        memberId: 'durable',
        weight: 10,
        redis: urlOf(rulesA.member.user),
        durability: 'replicated',
      });
      await waitFor(() => member.isActive(), 'the durable member active', A * 2 + LATE_MS);
    } finally {
      await replica.stop();
    }
  });
});

describe('the group feed under the member user', () => {
  it('publishes, reads, replays and commits; the monitor user may not publish', async () => {
    const user = rulesA.member.user;
    const keys = groupKeys(groupA);
    let activation: ActivateInfo | undefined;
    const member = await join({
      group: groupA,
      memberId: 'feeder',
      weight: 10,
      redis: urlOf(user),
      onActivate: (i) => {
        activation = i;
      },
    });
    await waitFor(() => member.isActive() && activation, 'the member active', A * 2 + LATE_MS);
    const { slot, epoch } = activation as ActivateInfo;
    const reader = await FeedReader.open({
      redis: urlOf(user),
      group: groupA,
      commandTimeout: 200,
      connectTimeout: 2000,
    });
    const errors: Error[] = [];
    const connection = new Redis(urlOf(user));
    try {
      const received: string[] = [];
      await reader.start((m) => void received.push(m.id));
      const ids = [
        await publish({ redis: urlOf(user), group: groupA }, 'one'),
        await publish({ redis: connection, group: groupA }, 2),
      ];
      await waitFor(() => received.length === 2, 'both messages');
      expect(received).toEqual(ids);
      const nonce = (JSON.parse((await connection.hget(keys.members, member.id)) as string) as { n: string }).n;
      const request = { memberId: member.id, nonce, slot, epoch, id: ids[0] as string };
      expect(await commitMessage(connection, keys, request)).toMatchObject({ outcome: 'committed' });
      expect(await reader.readCommit(slot)).toBe(ids[0]);
      const replayed: string[] = [];
      await reader.replay(ids[0], '+', (m) => void replayed.push(m.id));
      expect(replayed).toEqual(ids.slice(1));
      expect(errors).toEqual([]);
    } finally {
      connection.disconnect();
      await reader.stop();
    }
    const refused = await failure(() => publish({ redis: urlOf(rulesA.monitor.user), group: groupA }, 'x'));
    expect(refused).toBeInstanceOf(PermissionError);
    expect(refused).toMatchObject({ user: rulesA.monitor.user, group: groupA });
  });
});

describe("a member user of group A and group B's keys", () => {
  it('cannot join group B: a PermissionError naming NOPERM, the user and the group, at once, with nothing left running', async () => {
    const user = rulesA.member.user;
    const bystander = await join({ group: groupA, memberId: 'bystander', weight: 10, redis: urlOf(user) });
    await waitFor(() => bystander.isActive(), 'the member of group A active', A * 2 + LATE_MS);
    const before = (await connectionsOf(user)).length;

    // Its own URL (not the bystander's), so the refused member opens connections of its own.
    const started = performance.now();
    const error = await failure(() =>
      joinGroup({ ...FAST, redis: `${urlOf(user)}/0`, group: groupB, memberId: 'intruder', weight: 99 }),
    );
    expect(performance.now() - started).toBeLessThan(A);
    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({ code: 'NO_PERMISSION', user, group: groupB });
    const { message } = error as PermissionError;
    expect(message).toContain('NOPERM');
    expect(message).toContain(user);
    expect(message).toContain(groupB);
    expect(message).toContain(`understudy acl ${groupB}`);

    // No retries, no connections left, group B untouched, group A undisturbed.
    await waitFor(
      async () => (await connectionsOf(user)).length === before,
      'the refused member’s connections to close',
    );
    const refusals = await deniedCount();
    await new Promise((resolve) => setTimeout(resolve, 2 * A));
    expect(await deniedCount()).toBe(refusals);
    expect((await connectionsOf(user)).length).toBe(before);
    expect(await server.admin('KEYS', `understudy:{${groupB}}:*`)).toBe('');
    expect(bystander.isActive()).toBe(true);
  });

  it("cannot read or write group B's keys, run its scripts or hear its announcements", async () => {
    const b = groupKeys(groupB);
    const member = await join({ group: groupB, memberId: 'owner', weight: 10, redis: urlOf(rulesB.member.user) });
    await waitFor(() => member.isActive(), 'the member of group B active', A * 2 + LATE_MS);
    const intruder = new Redis(urlOf(rulesA.member.user));
    try {
      await expect(intruder.hgetall(b.config)).rejects.toThrow(/NOPERM/);
      await expect(intruder.hset(b.config, 'activeGoal', 5)).rejects.toThrow(/NOPERM/);
      await expect(intruder.del(b.members)).rejects.toThrow(/NOPERM/);
      await expect(intruder.eval("return redis.call('HGETALL', KEYS[1])", 1, b.config)).rejects.toThrow(/NOPERM/);
      // A key built inside a script is checked too.
      await expect(intruder.eval(`return redis.call('HGETALL', '${b.config}')`, 0)).rejects.toThrow(
        /can't access at least one of the keys/,
      );
      await expect(intruder.ssubscribe(b.events)).rejects.toThrow(/NOPERM/);
    } finally {
      intruder.disconnect();
    }
    const error = await failure(() => monitorGroup({ redis: urlOf(rulesA.member.user), group: groupB }));
    expect(error).toBeInstanceOf(PermissionError);
    expect((error as Error).message).toMatch(
      new RegExp(`${rulesA.member.user} may not monitor group ${groupB}: NOPERM`),
    );
    expect(member.isActive()).toBe(true);
  });
});

describe('a monitor user', () => {
  it('gets NOPERM on every write: joining, changing the goal, writing keys', async () => {
    const user = rulesA.monitor.user;
    const error = await failure(() =>
      joinGroup({ ...FAST, redis: urlOf(user), group: groupA, memberId: 'sneaky', weight: 10 }),
    );
    expect(error).toBeInstanceOf(PermissionError);
    expect(error).toMatchObject({ code: 'NO_PERMISSION', user, group: groupA });
    const watcher = new Redis(urlOf(user));
    const keys = groupKeys(groupA);
    try {
      await expect(watcher.hset(keys.config, 'activeGoal', 5)).rejects.toThrow(/NOPERM/);
      await expect(watcher.xadd(keys.log, '*', 'type', 'forged')).rejects.toThrow(/NOPERM/);
      await expect(watcher.spublish(keys.events, '{}')).rejects.toThrow(/NOPERM/);
      await expect(
        watcher.call('EVAL_RO', "return redis.call('HSET', KEYS[1], 'activeGoal', 5)", 1, keys.config),
      ).rejects.toThrow(/can't run this command/);
    } finally {
      watcher.disconnect();
    }
    await waitFor(async () => (await connectionsOf(user)).length === 0, 'the monitor user’s connections to close');
  });
});

describe('a member whose user loses its rules while it runs', () => {
  it('says NO_PERMISSION, demotes itself at its lease deadline and keeps trying without crashing', async () => {
    const user = 'understudy-revoked-member';
    const group = uniqueGroup('acl-revoked');
    const { member: rules } = aclRules({ group, memberUser: user });
    await server.admin('ACL', 'SETUSER', user, ...rules.rules, `>${PASSWORD}`);
    const advisories: Advisory[] = [];
    const member = await join({ group, memberId: 'revoked', weight: 10, redis: urlOf(user) });
    member.on('advisory', (a) => advisories.push(a));
    await waitFor(() => member.isActive(), 'the member active', A * 2 + LATE_MS);

    await server.admin('ACL', 'SETUSER', user, '-fcall', '-evalsha', '-eval');
    const advisory = await waitFor(
      () => advisories.find((a) => a.code === 'NO_PERMISSION'),
      'the NO_PERMISSION advisory',
      A + LATE_MS,
    );
    expect(advisory.message).toMatch(new RegExp(`${user} may not run the renew script on group ${group}: NOPERM`));
    await waitFor(() => member.state === 'standby', 'the member to demote itself', A + LATE_MS);
    expect(advisories.filter((a) => a.code === 'NO_PERMISSION')).toHaveLength(1);

    await server.admin('ACL', 'SETUSER', user, '+fcall', '+evalsha', '+eval');
    await waitFor(() => member.isActive(), 'the member active again once its rules are back', A * 3 + LATE_MS);
  });
});

describe('a member user made before PTTL was in the rules', () => {
  it('still fails over: the check of a lapsed lease against the heartbeat key is skipped', async () => {
    const user = 'understudy-older-rules';
    const group = uniqueGroup('acl-older-rules');
    const { member: rules } = aclRules({ group, memberUser: user });
    expect(rules.rules).toContain('+pttl');
    await server.admin('ACL', 'SETUSER', user, ...rules.rules.filter((r) => r !== '+pttl'), `>${PASSWORD}`);
    const redis = urlOf(user);
    const crasher = new MemberProcess({ url: redis, group, memberId: 'crasher', weight: 20 });
    await crasher.waitFor('activate', 20_000);
    const standby = await join({ group, memberId: 'standby', weight: 10, redis });
    await crasher.kill('SIGKILL');
    await waitFor(() => standby.isActive(), 'the standby active after the crash', A * 2 + LATE_MS);
    // The script's PTTL was refused (ACL LOG: the Lua context), and the failover went on without it.
    const log = (await server.admin('ACL', 'LOG')) as unknown as string;
    expect(String(log)).toContain('pttl');
  });
});
