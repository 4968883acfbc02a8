import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type GroupSnapshot, joinGroup, type Member } from '@understudy/core';
import { type RedisServer, redisServerBinary, startRedis } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  Cli,
  killLeftoverClis,
  ProgramRecords,
  processesOfGroup,
  understudy,
  uniqueGroup,
  waitFor,
} from './helpers.js';

const H = 100;
const A = 1000;
const OPERATOR = ['operator', 'operator-password'] as const;

let server: RedisServer;
let dir: string;
const members: Member[] = [];
const records: ProgramRecords[] = [];

beforeAll(async () => {
  // An operator of our own, to apply the printed rules with redis-cli as an administrator would.
  server = await startRedis({ acl: [`user ${OPERATOR[0]} on >${OPERATOR[1]} ~* &* +@all`] });
  dir = mkdtempSync(join(tmpdir(), 'understudy-acl-test-'));
});

afterAll(async () => {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.allSettled(members.splice(0).map((m) => m.leave()));
  await killLeftoverClis();
  for (const r of records.splice(0)) r.remove();
});

function passwordFile(name: string, password: string): string {
  const file = join(dir, name);
  writeFileSync(file, `${password}\n`);
  return file;
}

const url = (user: string, password: string) => `redis://${user}:${password}@127.0.0.1:${server.port}`;

/** Pipes text into redis-cli, logged in as the operator; returns its output. */
function redisCli(input: string): string {
  const cli = redisServerBinary().replace(/redis-server$/, 'redis-cli');
  const result = spawnSync(
    cli,
    ['-p', String(server.port), '--user', OPERATOR[0], '--pass', OPERATOR[1], '--no-auth-warning'],
    { input, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`redis-cli failed: ${result.stderr}`);
  return result.stdout;
}

describe('understudy acl', { timeout: 120_000 }, () => {
  it('prints rules that redis-cli applies, under which run, monitor and status work for the group', async () => {
    const group = uniqueGroup('acl-cli');
    const printed = await understudy([
      'acl',
      group,
      '--member-password-file',
      passwordFile('member.pw', 'member-secret'),
      '--monitor-password-file',
      passwordFile('monitor.pw', 'monitor-secret'),
    ]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stderr).toBe('');
    const lines = printed.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(
      new RegExp(`^ACL SETUSER understudy-${group}-member reset resetchannels on #[0-9a-f]{64} `),
    );
    expect(printed.stdout).not.toContain('secret');
    expect(redisCli(printed.stdout)).toBe('OK\nOK\n');

    const memberUrl = url(`understudy-${group}-member`, 'member-secret');
    const monitorUrl = url(`understudy-${group}-monitor`, 'monitor-secret');
    const program = new ProgramRecords();
    records.push(program);
    const wrapper = new Cli([
      'run',
      '--redis',
      memberUrl,
      '--group',
      group,
      '--member-id',
      'wrapped',
      '--weight',
      '10',
      '--heartbeat',
      String(H),
      '--activation',
      String(A),
      '--',
      ...program.command('wrapped'),
    ]);
    await wrapper.waitForStderr(/joined group/);
    await program.waitForStart('wrapped');

    const watcher = new Cli(['monitor', group, '--json', '--redis', monitorUrl]);
    await waitFor(
      () => watcher.lines().some((l) => (JSON.parse(l) as GroupSnapshot).activeCount === 1),
      () => `the monitor to show one active; it printed:\n${watcher.stdout}${watcher.stderr}`,
      40_000,
    );
    const status = await understudy(['status', group, '--json', '--redis', monitorUrl]);
    expect(status.code, status.stderr).toBe(0);
    const snapshot = JSON.parse(status.stdout) as GroupSnapshot & { transitions: unknown[] };
    expect(snapshot.members.map((m) => `${m.id}:${m.state}`)).toEqual(['wrapped:active']);
    expect(snapshot.transitions.length).toBeGreaterThan(0);

    wrapper.signal('SIGTERM');
    expect((await wrapper.result()).code).toBe(0);
    watcher.signal('SIGINT');
    await watcher.result();
  });

  it('prints an ACL file the server loads, and users that may not touch another group: exit 5 naming NOPERM, the user and the group', async () => {
    const group = uniqueGroup('acl-file');
    const other = uniqueGroup('acl-other');
    const printed = await understudy([
      'acl',
      group,
      '--format',
      'aclfile',
      '--member-user',
      'orders-app',
      '--monitor-user',
      'orders-dashboard',
      '--member-password-file',
      passwordFile('m2.pw', 'pw-member'),
      '--monitor-password-file',
      passwordFile('w2.pw', 'pw-monitor'),
    ]);
    expect(printed.code, printed.stderr).toBe(0);
    const lines = printed.stdout.trim().split('\n');
    expect(lines.map((l) => l.split(' ').slice(0, 2).join(' '))).toEqual(['user orders-app', 'user orders-dashboard']);
    const own = await startRedis({ acl: lines });
    try {
      const owner = await joinGroup({
        redis: own.url.replace('redis://', 'redis://orders-app:pw-member@'),
        group,
        memberId: 'owner',
        weight: 5,
        heartbeatInterval: H,
        activationInterval: A,
      });
      members.push(owner);
      const monitorUrl = own.url.replace('redis://', 'redis://orders-dashboard:pw-monitor@');
      await waitFor(
        async () => {
          const s = await understudy(['status', group, '--json', '--redis', monitorUrl]);
          return s.code === 0 && (JSON.parse(s.stdout) as GroupSnapshot).activeCount === 1;
        },
        'status under the monitor user to show the owner active',
        40_000,
        100,
      );

      const refused = await understudy(['status', other, '--redis', monitorUrl]);
      expect(refused.code).toBe(5);
      expect(refused.stderr).toContain('NOPERM');
      expect(refused.stderr).toContain('orders-dashboard');
      expect(refused.stderr).toContain(other);

      const started = performance.now();
      const intruder = await understudy([
        'run',
        '--redis',
        own.url.replace('redis://', 'redis://orders-app:pw-member@'),
        '--group',
        other,
        '--weight',
        '10',
        '--',
        process.execPath,
        '-e',
        'setInterval(() => {}, 1000)',
      ]);
      expect(intruder.code).toBe(5);
      expect(intruder.stderr).toMatch(new RegExp(`Redis user orders-app may not join group ${other}: NOPERM`));
      expect(performance.now() - started).toBeLessThan(40_000);
      expect(processesOfGroup(other)).toEqual([]);

      const writer = await understudy(['group', 'set', group, '--active-goal', '2', '--redis', monitorUrl]);
      expect(writer.code).toBe(5);
      expect(writer.stderr).toMatch(/orders-dashboard may not run the set_goal script on group .*NOPERM/);
    } finally {
      await Promise.allSettled(members.splice(0).map((m) => m.leave()));
      await own.stop();
    }
  });

  it('prints JSON, and says on stderr that a user without a password file cannot log in yet', async () => {
    const result = await understudy(['acl', 'orders', '--format', 'json', '--prefix', 'app']);
    expect(result.code).toBe(0);
    const parsed = JSON.parse(result.stdout) as {
      member: { user: string; rules: string[] };
      monitor: { rules: string[] };
    };
    expect(parsed.member.user).toBe('understudy-orders-member');
    expect(parsed.member.rules).toContain('~app:{orders}:*');
    expect(parsed.monitor.rules).toContain('%R~app:{orders}:*');
    expect(parsed.member.rules.some((r) => r.startsWith('#') || r.startsWith('>'))).toBe(false);
    expect(result.stderr).toContain('understudy-orders-member gets no password');
    expect(result.stderr).toContain('understudy-orders-monitor gets no password');
  });

  it('loads the function libraries as an operator (once), which the printed users may not', async () => {
    redisCli('FUNCTION FLUSH\n');
    const group = uniqueGroup('acl-functions');
    const printed = await understudy(['acl', group, '--member-password-file', passwordFile('fm.pw', 'fm-secret')]);
    expect(printed.code, printed.stderr).toBe(0);
    redisCli(printed.stdout);
    const memberUrl = url(`understudy-${group}-member`, 'fm-secret');
    const refused = await understudy(['functions', 'load', '--redis', memberUrl]);
    expect(refused.code).toBe(5);
    expect(refused.stderr).toMatch(/may not load understudy's function libraries: NOPERM .*function\|load/);

    const operator = url(...OPERATOR);
    const loaded = await understudy(['functions', 'load', '--redis', operator]);
    expect(loaded.code, loaded.stderr).toBe(0);
    expect(loaded.stdout).toMatch(/^group library understudy_[0-9a-f]{8}: loaded on 1 of 1 server\n/);
    expect(loaded.stdout).toMatch(/\nqueue library understudy_[0-9a-f]{8}: loaded on 1 of 1 server\n$/);
    const again = await understudy(['functions', 'load', '--redis', operator]);
    expect(again.stdout).toContain('loaded on 0 of 1 server (already on 1)');
    const libraries = redisCli('FUNCTION LIST LIBRARYNAME understudy_*\n');
    for (const name of loaded.stdout.match(/understudy_[0-9a-f]{8}/g) ?? []) expect(libraries).toContain(name);
  });

  it('refuses bad input with exit 2, naming it', async () => {
    const empty = passwordFile('empty.pw', '');
    for (const [args, message] of [
      [['acl', 'a{b}'], /character "\{"/],
      [['acl', 'orders', '--member-user', 'has space'], /memberUser = "has space"/],
      [['acl', 'orders', '--member-password-file', join(dir, 'missing.pw')], /missing\.pw.*ENOENT/],
      [['acl', 'orders', '--monitor-password-file', empty], /one non-empty line/],
      [['acl', 'orders', '--member-user', 'same', '--monitor-user', 'same'], /must differ/],
      [['acl', 'orders', '--format', 'yaml'], /Allowed choices are commands, aclfile, json/],
      [['acl'], /missing required argument 'group'/],
    ] as const) {
      const result = await understudy(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(2);
      expect(result.stderr).toMatch(message);
    }
  });
});
