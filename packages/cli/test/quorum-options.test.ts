import { joinGroup } from '@understudy/core';
import { startRedis, startRedisQuorum, uniqueGroup, waitFor } from '@understudy/testkit';
import { Command } from 'commander';
import { afterEach, describe, expect, it } from 'vitest';
import { main } from '../src/index.js';
import {
  type ConnectionOptions,
  DEFAULT_REDIS_URL,
  groupSources,
  redisSource,
  redisUrls,
  withConnectionOptions,
} from '../src/options.js';

// Quorum mode on the command line (DESIGN §9): `--redis` given K times, or REDIS_URL with K
// comma-separated URLs. No Redis is contacted here: every case fails or parses before that.
const [R1, R2, R3, R4, R5] = [1, 2, 3, 4, 5].map((i) => `redis://127.0.0.1:${6400 + i}`) as [
  string,
  string,
  string,
  string,
  string,
];

const savedEnv = process.env.REDIS_URL;
afterEach(() => {
  if (savedEnv === undefined) delete process.env.REDIS_URL;
  else process.env.REDIS_URL = savedEnv;
});

/** Parses `args` with the shared connection options; resolves with what the action saw. */
async function parse(args: string[], quorum = true, env?: string): Promise<ConnectionOptions> {
  if (env === undefined) delete process.env.REDIS_URL;
  else process.env.REDIS_URL = env;
  let seen: ConnectionOptions | undefined;
  const command = withConnectionOptions(new Command('probe'), { quorum })
    .exitOverride()
    .action((options: ConnectionOptions) => {
      seen = options;
    });
  await command.parseAsync(args, { from: 'user' });
  if (!seen) throw new Error('the action did not run');
  return seen;
}

describe('redisUrls', () => {
  it('gives one URL for one, K for a quorum of 3, 5 or 7', () => {
    expect(redisUrls(R1, 'default')).toEqual([R1]);
    expect(redisUrls([R1, R2, R3], 'cli')).toEqual([R1, R2, R3]);
    expect(redisUrls([`${R1}, ${R2} ,${R3},${R4},${R5}`], 'env')).toEqual([R1, R2, R3, R4, R5]);
  });

  it('refuses an even count or one outside 3–7, naming the count and where it came from', () => {
    expect(() => redisUrls([R1, R2], 'cli')).toThrow(
      '--redis is given 2 times: quorum mode needs an odd number of independent Redis servers from 3 to 7 (3, 5 or 7), got 2',
    );
    expect(() => redisUrls([[R1, R2, R3, R4].join(',')], 'env')).toThrow(/^REDIS_URL lists 4 URLs: .* got 4$/);
    const nine = Array.from({ length: 9 }, (_, i) => `redis://127.0.0.1:${7000 + i}`);
    expect(() => redisUrls(nine, 'cli')).toThrow(/given 9 times: .* got 9/);
  });

  it('refuses a server named twice, an empty entry, a comma inside one --redis, and a bad scheme', () => {
    expect(() => redisUrls([R1, R2, 'redis://127.0.0.1:6401/2'], 'cli')).toThrow(
      '127.0.0.1:6401 is named twice; quorum mode needs 3 distinct servers',
    );
    expect(() => redisUrls([`${R1},,${R2}`], 'env')).toThrow('an empty URL between commas');
    expect(() => redisUrls([`${R1},${R2}`], 'cli')).toThrow('one URL per --redis');
    expect(() => redisUrls([R1, 'http://x:1', R3], 'cli')).toThrow('the scheme must be redis:// or rediss://');
  });
});

describe('withConnectionOptions', () => {
  it('keeps one --redis as before, and the default when none is given', async () => {
    expect(await parse(['--redis', R1])).toMatchObject({ redis: R1 });
    expect((await parse(['--redis', R1])).redisQuorum).toBeUndefined();
    expect((await parse([])).redis).toBe(DEFAULT_REDIS_URL);
    expect((await parse([], true, R2)).redis).toBe(R2);
  });

  it('collects --redis given K times, and REDIS_URL with K URLs, into redisQuorum', async () => {
    const fromFlags = await parse(['--redis', R1, '--redis', R2, '--redis', R3]);
    expect(fromFlags.redis).toBe(R1);
    expect(fromFlags.redisQuorum).toEqual([R1, R2, R3]);
    const fromEnv = await parse([], true, [R3, R2, R1, R4, R5].join(','));
    expect(fromEnv.redisQuorum).toEqual([R3, R2, R1, R4, R5]);
    // A flag overrides the environment, as for one URL.
    expect((await parse(['--redis', R4], true, [R1, R2, R3].join(','))).redisQuorum).toBeUndefined();
  });

  it('refuses several URLs on a command without quorum mode, naming it', async () => {
    await expect(parse(['--redis', R1, '--redis', R2, '--redis', R3], false)).rejects.toThrow(
      'probe takes one Redis (--redis once), got 3',
    );
  });

  it('hands run, monitor, status and group set the K URLs, and refuses them where one Redis is taken', () => {
    const options = { redis: R1, redisQuorum: [R1, R2, R3], prefix: 'understudy' };
    expect(groupSources(options)).toEqual([R1, R2, R3]);
    expect(groupSources({ redis: R1, prefix: 'understudy' })).toBe(R1);
    expect(() => redisSource(options)).toThrow(
      /--redis is given 3 times: quorum mode .* is supported by run, monitor, status and group set; give --redis once/,
    );
    expect(() => groupSources({ ...options, cluster: [{ host: '127.0.0.1', port: 7000 }] })).toThrow(
      /quorum mode takes K redis:\/\/ or rediss:\/\/ URLs here/,
    );
  });
});

describe('understudy with K URLs', () => {
  async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    delete process.env.REDIS_URL;
    let stderr = '';
    let stdout = '';
    const code = await main(args, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), isTTY: false });
    return { code, stdout, stderr };
  }

  it('names the count when K is even, for run, monitor, status and group set', async () => {
    const two = ['--redis', R1, '--redis', R2];
    for (const args of [
      ['run', ...two, '--group', 'g', '--weight', '1', '--', 'true'],
      ['monitor', 'g', ...two],
      ['status', 'g', ...two],
      ['group', 'set', 'g', '--active-goal', '2', ...two],
    ]) {
      const { code, stderr } = await run(args);
      expect(code, `${args.join(' ')}: ${stderr}`).toBe(2);
      expect(stderr).toContain('--redis is given 2 times: quorum mode needs an odd number');
    }
  });

  it('status and group set over three servers: the majority view, per-server reachability, Q needed', async () => {
    const quorum = await startRedisQuorum({ count: 3 });
    const group = uniqueGroup('cli-quorum-admin');
    const member = await joinGroup({
      redis: quorum.urls,
      group,
      memberId: 'm1',
      weight: 5,
      heartbeatInterval: 50,
      activationInterval: 400,
    });
    try {
      await waitFor(() => member.isActive(), 'm1 active');
      const urls = quorum.urls.flatMap((u) => ['--redis', u]);

      let r = await run(['status', group, ...urls]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/1\/1 active/);
      expect(r.stdout).toContain('servers: 3 of 3 reachable, a quorum is 2');
      expect(r.stdout).toMatch(/servers 1,2,3 of 3/);

      r = await run(['group', 'set', group, '--active-goal', '2', ...urls]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('active goal 1 -> 2');
      expect(r.stdout).toContain('accepted by 3 of 3 servers, a quorum is 2');

      r = await run(['status', group, ...urls, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const shown = JSON.parse(r.stdout);
      expect(shown).toMatchObject({ group, activeGoal: 2, quorum: 2 });
      expect(shown.servers.map((s: { reachable: boolean }) => s.reachable)).toEqual([true, true, true]);

      r = await run(['status', ...urls]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain(group);

      // One server lost: a majority still answers, the lost one is named.
      await quorum.kill(2);
      r = await run(['group', 'set', group, '--active-goal', '1', ...urls, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const change = JSON.parse(r.stdout);
      expect(change).toMatchObject({ previous: 2, accepted: 2, quorum: 2 });
      expect(change.servers[2]).toMatchObject({ reachable: false });
      r = await run(['status', group, ...urls]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('servers: 2 of 3 reachable, a quorum is 2');
      expect(r.stdout).toMatch(/unreachable: /);

      // Two lost: no majority.
      await quorum.kill(1);
      r = await run(['group', 'set', group, '--active-goal', '2', ...urls]);
      expect(r.code).toBe(3);
      expect(r.stderr).toContain('1 of 3 servers accepted, a quorum is 2; the goal is not in effect');
      r = await run(['status', group, ...urls]);
      expect(r.code).toBe(3);
    } finally {
      await member.leave().catch(() => undefined);
      await quorum.stop();
    }
  });

  it('runs a command as the active member of a group over three servers (quorum mode)', async () => {
    const servers = await Promise.all([startRedis(), startRedis(), startRedis()]);
    try {
      const urls = servers.flatMap((s) => ['--redis', s.url]);
      const group = uniqueGroup('cli-quorum');
      const args = ['run', ...urls, '--group', group, '--weight', '1', '--heartbeat', '50', '--activation', '400'];
      // `true` exits at once once active: the wrapper leaves the group and exits with its code.
      const { code, stderr } = await run([...args, '--', 'true']);
      expect(code, stderr).toBe(0);
    } finally {
      await Promise.all(servers.map((s) => s.stop()));
    }
  });

  it('refuses K URLs for a command that takes one Redis (queue)', async () => {
    const { code, stderr } = await run(['queue', 'q', '--redis', R1, '--redis', R2, '--redis', R3]);
    expect(code).toBe(2);
    expect(stderr).toContain('queue takes one Redis (--redis once), got 3');
  });
});
