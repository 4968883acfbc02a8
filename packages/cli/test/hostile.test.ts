import { joinGroup } from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
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

// Hostile command lines: every one ends with exit code 2 and a message naming the bad input,
// before anything runs (no program started, no process of the group left).

let server: RedisServer;
let records: ProgramRecords;

beforeAll(async () => {
  server = await startRedis();
  records = new ProgramRecords();
});

afterAll(async () => {
  records.remove();
  await server.stop();
});

afterEach(async () => {
  await killLeftoverClis();
});

interface FlagCase {
  name: string;
  /** Arguments after `understudy`; REDIS is replaced by the test server's URL. */
  args: string[];
  message: RegExp;
}

const GROUP = 'hostile-cli';
const run = (...flags: string[]) => ['run', '--redis', 'REDIS', '--group', GROUP, ...flags];
const program = () => records.command('never');

const flagCases: FlagCase[] = [
  { name: 'run without a command', args: run('--weight', '1'), message: /missing required argument 'command'/ },
  {
    name: 'run with an unknown flag before the command',
    args: [...run('--weight', '1', '--frobnicate'), '--', 'true'],
    message: /unknown option '--frobnicate'/,
  },
  {
    name: 'run without --weight',
    args: ['run', '--redis', 'REDIS', '--group', GROUP, '--', 'true'],
    message: /required option '--weight <n>' not specified/,
  },
  { name: 'a weight of 0', args: [...run('--weight', '0'), '--', 'true'], message: /0 is below the minimum of 1/ },
  {
    name: 'a weight that is a word',
    args: [...run('--weight', 'heavy'), '--', 'true'],
    message: /"heavy" is not a whole number/,
  },
  {
    name: 'a weight of 70000',
    args: [...run('--weight', '70000'), '--', 'true'],
    message: /--weight 70000: must be an integer from 1 to 65535/,
  },
  { name: 'a weight of 1.5', args: [...run('--weight', '1.5'), '--', 'true'], message: /"1.5" is not a whole number/ },
  {
    name: 'a negative heartbeat',
    args: [...run('--weight', '1', '--heartbeat', '-5'), '--', 'true'],
    message: /-5 is below the minimum of 1/,
  },
  {
    name: 'an activation interval below the heartbeat',
    args: [...run('--weight', '1', '--heartbeat', '500', '--activation', '400'), '--', 'true'],
    message: /--activation 400 with --heartbeat 500 leaves no time to stop the program/,
  },
  {
    name: 'an activation interval of 10^11 ms',
    args: [...run('--weight', '1', '--activation', '100000000000'), '--', 'true'],
    message: /--activation 100000000000: must be at most 86400000 ms/,
  },
  {
    name: 'an activation interval beyond 2^53',
    args: [...run('--weight', '1', '--activation', '99999999999999999999'), '--', 'true'],
    message: /"99999999999999999999" is not a whole number/,
  },
  {
    name: 'an active goal of 0',
    args: [...run('--weight', '1', '--active-goal', '0'), '--', 'true'],
    message: /0 is below the minimum of 1/,
  },
  {
    name: 'a preparation interval below the heartbeat',
    args: [...run('--weight', '1', '--preparation', '500'), '--', 'true'],
    message: /--preparation 500: must be 0 \(no prepare hints\) or between --heartbeat/,
  },
  {
    name: 'a member id with a space',
    args: [...run('--weight', '1', '--member-id', 'a b'), '--', 'true'],
    message: /--member-id "a b": a member id is 1-200 characters/,
  },
  {
    name: 'a stop timeout as long as the activation interval',
    args: [...run('--weight', '1', '--stop-timeout', '3000'), '--', 'true'],
    message: /--stop-timeout 3000 is too long for --activation 3000 and --heartbeat 1000 \(at most 870 here\)/,
  },
  {
    name: 'a group name with a brace',
    args: ['run', '--redis', 'REDIS', '--group', 'a{b}', '--weight', '1', '--', 'true'],
    message: /group = "a\{b\}": character "\{" is not allowed/,
  },
  {
    name: 'a group name with a newline',
    args: ['status', 'a\nb', '--redis', 'REDIS'],
    message: /character "\\n" is not allowed/,
  },
  {
    name: 'an empty group name',
    args: ['status', '', '--redis', 'REDIS'],
    message: /group = "": a group name is 1-128 characters/,
  },
  {
    name: 'a group name of 129 characters',
    args: ['status', 'g'.repeat(129), '--redis', 'REDIS'],
    message: /longer than 128 characters \(129\)/,
  },
  {
    name: 'a key prefix with a space',
    args: ['status', 'g', '--redis', 'REDIS', '--prefix', 'a b'],
    message: /--prefix "a b": a key prefix is 1-64 characters/,
  },
  {
    name: 'an http:// URL',
    args: ['status', 'g', '--redis', 'http://127.0.0.1:6379'],
    message: /the scheme must be redis:\/\/ or rediss:\/\//,
  },
  {
    name: 'a URL with port 70000',
    args: ['status', 'g', '--redis', 'redis://127.0.0.1:70000'],
    message: /--redis redis:\/\/127.0.0.1:70000: not a URL/,
  },
  { name: 'something that is not a URL', args: ['status', 'g', '--redis', 'localhost 6379'], message: /not a URL/ },
  {
    name: 'a Sentinel address with port 99999',
    args: ['status', 'g', '--sentinel', '127.0.0.1:99999', '--master-name', 'm'],
    message: /port 99999 is not from 1 to 65535/,
  },
  {
    name: 'a Cluster address without a port',
    args: ['status', 'g', '--cluster', '127.0.0.1'],
    message: /"127.0.0.1" is not host:port/,
  },
  {
    name: 'a Cluster address with a word for a port',
    args: ['status', 'g', '--cluster', '127.0.0.1:abc'],
    message: /"127.0.0.1:abc" is not host:port/,
  },
  {
    name: 'Sentinel without a master name',
    args: ['status', 'g', '--sentinel', '127.0.0.1:26379'],
    message: /--sentinel needs --master-name/,
  },
  {
    name: 'Sentinel and Cluster at once',
    args: ['status', 'g', '--sentinel', '127.0.0.1:26379', '--master-name', 'm', '--cluster', '127.0.0.1:7000'],
    message: /give --sentinel or --cluster, not both/,
  },
  { name: 'an unknown flag of status', args: ['status', '--frobnicate'], message: /unknown option '--frobnicate'/ },
  { name: 'an unknown command', args: ['frobnicate'], message: /unknown command 'frobnicate'/ },
  {
    name: 'a monitor lost interval of 0',
    args: ['monitor', 'g', '--redis', 'REDIS', '--lost-interval', '0'],
    message: /0 is below the minimum of 1/,
  },
  {
    name: 'a monitor lost interval of 10^12 ms',
    args: ['monitor', 'g', '--redis', 'REDIS', '--lost-interval', '1000000000000'],
    message: /--lost-interval 1000000000000: must be a whole number of milliseconds from 1 to 86400000/,
  },
  {
    name: 'a history of -1',
    args: ['status', 'g', '--redis', 'REDIS', '--history', '-1'],
    message: /-1 is below the minimum of 0/,
  },
  {
    name: 'an active goal of 0 for group set',
    args: ['group', 'set', 'g', '--redis', 'REDIS', '--active-goal', '0'],
    message: /0 is below the minimum of 1/,
  },
  {
    name: 'an active goal of 20000 for group set',
    args: ['group', 'set', 'g', '--redis', 'REDIS', '--active-goal', '20000'],
    message: /--active-goal 20000: must be an integer from 1 to 10000/,
  },
];

describe('hostile command lines', { timeout: 120_000 }, () => {
  it.each(flagCases.map((c) => [c.name, c] as const))(
    'refuses %s with exit code 2, naming it, starting nothing',
    async (_name, c) => {
      const args = c.args.map((a) => (a === 'REDIS' ? server.url : a));
      // A run that got past its checks would start the recording program instead of `true`.
      const withProgram = args.at(-1) === 'true' ? [...args.slice(0, -1), ...program()] : args;
      const result = await understudy(withProgram);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr).toMatch(c.message);
      expect(records.starts()).toEqual([]);
      expect(processesOfGroup(GROUP)).toEqual([]);
    },
  );
});

describe('a group with corrupt state, from the command line', { timeout: 120_000 }, () => {
  it('status exits 1 naming the key and what is wrong with it; a run is refused the same way, starting nothing', async () => {
    const group = uniqueGroup('hostile-cli-state');
    const keys = groupKeys(group);
    const member = await joinGroup({
      redis: server.url,
      group,
      weight: 1,
      heartbeatInterval: 100,
      activationInterval: 1000,
    });
    const admin = new Redis(server.url);
    try {
      await waitFor(() => member.isActive(), 'the member active', 5000);
      await admin.hset(keys.config, 'activeGoal', 'many');
      const status = await understudy(['status', group, '--redis', server.url]);
      expect(status.code).toBe(1);
      expect(status.stderr).toContain(
        `group ${group} has corrupt state: ${keys.config} field activeGoal is not a whole number from 0 to 10000`,
      );

      const refused = await understudy([
        'run',
        '--redis',
        server.url,
        '--group',
        group,
        '--weight',
        '5',
        '--heartbeat',
        '100',
        '--activation',
        '1000',
        '--',
        ...records.command('corrupt'),
      ]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`group ${group} has corrupt state: ${keys.config} field activeGoal`);
      expect(records.starts('corrupt')).toEqual([]);
      expect(processesOfGroup(group)).toEqual([]);
    } finally {
      await member.leave();
      await admin.del(...keys.scriptKeys);
      admin.disconnect();
    }
  });
});

describe('status of every group, one of them corrupt (issue 19 item 10)', { timeout: 120_000 }, () => {
  it('lists the healthy groups, the corrupt one with its error, and exits 1', async () => {
    const db = `${server.url}/5`;
    const [healthy, corrupt] = [uniqueGroup('a-healthy'), uniqueGroup('b-corrupt')];
    const members = await Promise.all(
      [healthy, corrupt].map((group) =>
        joinGroup({ redis: db, group, memberId: 'm', weight: 1, heartbeatInterval: 100, activationInterval: 1000 }),
      ),
    );
    const admin = new Redis(db);
    try {
      await waitFor(() => members.every((m) => m.isActive()), 'both members active', 5000);
      await admin.hset(groupKeys(corrupt).config, 'activeGoal', 'many');

      const { code, stdout } = await understudy(['status', '--redis', db]);
      const asJson = await understudy(['status', '--json', '--redis', db]);

      expect(code).toBe(1);
      expect(stdout).toMatch(new RegExp(`^${healthy}\\s+1/1\\s+1\\s`, 'm'));
      expect(stdout).toMatch(new RegExp(`^${corrupt}\\s+\\?.*cannot be read: group ${corrupt} has corrupt state`, 'm'));
      expect(asJson.code).toBe(1);
      const parsed = JSON.parse(asJson.stdout) as { groups: { group: string }[]; failed: { group: string }[] };
      expect(parsed.groups.map((g) => g.group)).toEqual([healthy]);
      expect(parsed.failed.map((f) => f.group)).toEqual([corrupt]);
    } finally {
      await Promise.all(members.map((m) => m.leave()));
      await admin.flushdb();
      admin.disconnect();
    }
  });
});

describe('values planted in Redis, printed (issue 19 item 7)', { timeout: 120_000 }, () => {
  // ESC ] 2 ; … BEL sets the terminal's title, ESC [ 2 J clears the screen, CSI (U+009B) is
  // ESC [ on some terminals, U+202E reverses the text that follows.
  const evil = '\u001b]2;pwned\u0007\u001b[2J\u009b31m\u202e';
  const escaped = '\\x1b]2;pwned\\x07\\x1b[2J\\x9b31m\\u202e';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: the characters that must not reach a terminal
  const raw = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/;

  it('never reach the terminal unescaped: status, status --json and monitor', async () => {
    const group = uniqueGroup('hostile-cli-planted');
    const keys = groupKeys(group);
    const member = await joinGroup({
      redis: server.url,
      group,
      memberId: 'a',
      weight: 1,
      heartbeatInterval: 100,
      activationInterval: 1000,
    });
    const admin = new Redis(server.url);
    try {
      await waitFor(() => member.isActive(), 'the member active', 5000);
      // A member entry and a log entry with the planted id, copied from the real member's.
      const record = (await admin.hget(keys.members, 'a')) as string;
      const lease = Number(await admin.zscore(keys.leases, 'a'));
      await admin.hset(keys.members, evil, record);
      await admin.zadd(keys.leases, lease + 60_000, evil);
      await admin.zadd(keys.rank, Number(await admin.zscore(keys.rank, 'a')) - 1, evil);
      await admin.xadd(keys.log, '*', 'type', 'join', 'member', evil, 'reason', evil);

      const status = await understudy(['status', group, '--redis', server.url]);
      const asJson = await understudy(['status', group, '--json', '--redis', server.url]);
      const watcher = new Cli(['monitor', group, '--history', '5', '--redis', server.url]);
      await waitFor(
        () => watcher.stdout.includes(`join  ${escaped}`),
        'the monitor to show the planted transition',
        30_000,
      );
      watcher.signal('SIGINT');
      await watcher.result();

      for (const out of [status.stdout, asJson.stdout, watcher.stdout]) expect(out).not.toMatch(raw);
      expect(watcher.stdout).toContain(`${escaped}=standby`);
      expect(status.stdout).toContain(escaped);
      expect(JSON.parse(asJson.stdout).members.map((m: { id: string }) => m.id)).toContain(evil);
    } finally {
      await member.leave();
      await admin.del(...keys.scriptKeys);
      admin.disconnect();
    }
  });
});
