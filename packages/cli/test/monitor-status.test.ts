import { type GroupSnapshot, joinGroup, type Member } from '@understudy/core';
import { freePort, startChaosProxy, startRedisQuorum } from '@understudy/testkit';
import { describe, expect, it } from 'vitest';
import { Cli, fileFixture, hrNow, processesOfGroup, STARTUP_MS, understudy, uniqueGroup, waitFor } from './helpers.js';

// Each CLI start-up may take seconds on a loaded machine (see STARTUP_MS): tests get a wide timeout.
const H = 100;
const A = 1000;

const { server, members } = fileFixture();

/** A member in this process (the CLI under test only watches or administers the group). */
async function join(group: string, memberId: string, weight: number): Promise<Member> {
  const member = await joinGroup({
    redis: server().url,
    group,
    memberId,
    weight,
    heartbeatInterval: H,
    activationInterval: A,
  });
  members.push(member);
  return member;
}

function untilActive(member: Member, timeoutMs = A + 5000): Promise<true> {
  return waitFor(() => member.state === 'active', `${member.id} to be active`, timeoutMs);
}

/** What a change is about: the count, the goal and each member's id, weight, rank, state and epoch. */
function summary(s: GroupSnapshot): string {
  return `${s.activeCount}/${s.activeGoal}: ${s.members.map((m) => `${m.id}=${m.state}`).join(' ')}`;
}

/** A snapshot without the fields that age by themselves (lease time left, server time). */
function withoutClock(s: GroupSnapshot): unknown {
  return {
    ...s,
    serverTime: undefined,
    quarantineRemainingMs: undefined,
    members: s.members.map((m) => ({ ...m, leaseRemainingMs: undefined })),
  };
}

function monitor(group: string): Cli {
  return new Cli(['monitor', group, '--json', '--redis', server().url]);
}

function printed(cli: Cli): GroupSnapshot[] {
  return cli.lines().map((line) => JSON.parse(line) as GroupSnapshot);
}

/** Waits until the last object the monitor printed is `expected`; returns hrNow() then. */
function shows(watcher: Cli, expected: string, timeoutMs = 10_000): Promise<number> {
  return waitFor(
    () => {
      const last = printed(watcher).at(-1);
      return last !== undefined && summary(last) === expected && hrNow();
    },
    () => `the monitor to show ${expected}; it printed:\n${printed(watcher).map(summary).join('\n')}`,
    timeoutMs,
  );
}

describe('understudy monitor --json', { timeout: 90_000 }, () => {
  it('prints the current state first', async () => {
    const group = uniqueGroup('monitor-first');
    const a = await join(group, 'a', 100);
    await untilActive(a);

    const watcher = monitor(group);
    const [first] = await waitFor(
      () => printed(watcher).length > 0 && printed(watcher),
      'the first object',
      STARTUP_MS,
    );

    expect(first).toMatchObject({
      group,
      activeCount: 1,
      activeGoal: 1,
      members: [{ id: 'a', weight: 100, rank: 1, state: 'active', epoch: a.epoch }],
    });
    watcher.signal('SIGINT');
    expect((await watcher.result()).code).toBe(0);
  });

  it('prints one object per change, in order, as members join, preempt and leave', async () => {
    const group = uniqueGroup('monitor-changes');
    const watcher = monitor(group);
    await waitFor(() => printed(watcher).length > 0, 'the first object', STARTUP_MS);

    // Each step waits until the monitor has shown its outcome: a monitor reports the state it
    // reads, and may pass over a state that lasts only a few milliseconds.
    await join(group, 'a', 100);
    await shows(watcher, '1/1: a=active');
    const b = await join(group, 'b', 200);
    await shows(watcher, '1/1: b=active a=standby');
    await b.leave();
    await shows(watcher, '1/1: a=active');
    watcher.signal('SIGINT');
    expect((await watcher.result()).code).toBe(0);

    const objects = printed(watcher);
    const summaries = objects.map(summary);
    expect(summaries[0]).toBe('0/0: ');
    // The milestones, in this order (the monitor may also show the steps in between).
    const milestones = ['1/1: a=active', '1/1: b=active a=standby', '1/1: a=active'];
    const found: number[] = [];
    for (const milestone of milestones) {
      const after = (found.at(-1) ?? 0) + 1;
      const index = summaries.indexOf(milestone, after);
      expect(index, `${milestone} after object ${after} in\n${summaries.join('\n')}`).toBeGreaterThanOrEqual(after);
      found.push(index);
    }
    expect(found.at(-1)).toBe(summaries.length - 1);
    // Never two active at once (a member handing over its slot still counts).
    for (const s of objects) {
      expect(s.activeCount).toBeLessThanOrEqual(1);
      expect(s.activeCount).toBe(s.members.filter((m) => m.state === 'active' || m.state === 'releasing').length);
    }
    // One object per change: no two consecutive objects say the same.
    for (let i = 1; i < objects.length; i++) {
      expect(withoutClock(objects[i] as GroupSnapshot)).not.toEqual(withoutClock(objects[i - 1] as GroupSnapshot));
    }
    // Every activation carries a larger epoch: a, then b, then a again.
    const epochs = found.map((index) => objects[index]?.members[0]?.epoch ?? 0);
    expect(epochs[1]).toBeGreaterThan(epochs[0] ?? 0);
    expect(epochs[2]).toBeGreaterThan(epochs[1] ?? 0);
  });

  it('reports an active member lost once its lease lapses, though nobody writes to the group any more', async () => {
    const group = uniqueGroup('monitor-lapse');
    const wrapper = new Cli([
      'run',
      '--redis',
      server().url,
      '--group',
      group,
      '--member-id',
      'a',
      '--weight',
      '100',
      '--heartbeat',
      String(H),
      '--activation',
      String(A),
      '--',
      process.execPath,
      '-e',
      'setInterval(() => {}, 1 << 30)',
    ]);
    const watcher = monitor(group);
    await shows(watcher, '1/1: a=active', STARTUP_MS);

    const killedAt = wrapper.signal('SIGKILL');
    const lostAt = await shows(watcher, '0/1: ', A + 5000);
    console.info(
      `monitor: the SIGKILLed active shown lost ${Math.round(lostAt - killedAt)} ms after the kill (A = ${A} ms)`,
    );

    // Lost when its lease lapses: not before (its last renewal was at most H before the kill), nor long after.
    expect(lostAt - killedAt).toBeGreaterThan(A / 2);
    expect(lostAt - killedAt).toBeLessThan(A + 1500);
    watcher.signal('SIGINT');
    expect((await watcher.result()).code).toBe(0);
    expect(processesOfGroup(group)).toEqual([]);
  });

  it.each([
    {
      mode: 'JSON',
      flags: ['--json'],
      down: /"unreachable":\{"since":"[^"]+","error":"[^"]+"\},"lastKnown":\{"group"/,
    },
    {
      mode: 'plain',
      flags: [],
      down: /Redis unreachable since \S+: .+; last known: group \S+ · 1\/1 active · 1 member/,
    },
  ])(
    'says when Redis goes away, since when and what it last knew, then that it is back ($mode)',
    async ({ flags, down }) => {
      const group = uniqueGroup('monitor-unreachable');
      const a = await join(group, 'a', 100);
      await untilActive(a);
      const proxy = await startChaosProxy({ target: { host: server().host, port: server().port } });
      try {
        const watcher = new Cli(['monitor', group, ...flags, '--redis', proxy.url(server().url)]);
        await waitFor(() => watcher.lines().length > 0, 'the first line', STARTUP_MS);

        proxy.blackhole(true);
        await waitFor(
          () => down.test(watcher.stdout),
          () => `the outage to be reported; it printed:\n${watcher.stdout}`,
          10_000,
        );
        const printedDown = watcher.lines().length;
        proxy.heal();
        proxy.reset();
        await waitFor(
          () => watcher.lines().length > printedDown && watcher.lines().at(-1)?.includes(group),
          () => `the monitor to print the group again; it printed:\n${watcher.stdout}`,
          15_000,
        );
        watcher.signal('SIGINT');
        expect((await watcher.result()).code).toBe(0);
      } finally {
        await proxy.close();
      }
    },
  );

  it('stops on SIGINT and exits 0', async () => {
    const watcher = monitor(uniqueGroup('monitor-sigint'));
    await waitFor(() => watcher.lines().length > 0, 'the first object', STARTUP_MS);

    watcher.signal('SIGINT');
    const { code, stderr } = await watcher.result(5000);

    expect(code, stderr).toBe(0);
    expect(stderr).toBe('');
  });
});

interface StatusGroup extends GroupSnapshot {
  transitions: { id: string; time: number; type: string; member: string; epoch?: number }[];
}

/** Group `group`: a (weight 300) active, then b (weight 100) standing by. */
async function activeAndStandby(group: string): Promise<{ a: Member; b: Member }> {
  const a = await join(group, 'a', 300);
  await untilActive(a);
  const b = await join(group, 'b', 100);
  return { a, b };
}

describe('understudy status', { timeout: 90_000 }, () => {
  it('prints every group with members, ranks, weights, states, epochs and recent transitions in order, as JSON', async () => {
    const group = uniqueGroup('status-all');
    const other = uniqueGroup('status-other');
    const { a } = await activeAndStandby(group);
    await join(other, 'c', 50);

    const { code, stdout, stderr } = await understudy(['status', '--json', '--redis', server().url]);

    expect(code, stderr).toBe(0);
    const { groups } = JSON.parse(stdout) as { groups: StatusGroup[] };
    const names = groups.map((g) => g.group);
    expect(names).toContain(group);
    expect(names).toContain(other);
    const shown = groups.find((g) => g.group === group) as StatusGroup;
    expect(shown).toMatchObject({
      activeCount: 1,
      activeGoal: 1,
      members: [
        { id: 'a', rank: 1, weight: 300, state: 'active', epoch: a.epoch },
        { id: 'b', rank: 2, weight: 100, state: 'standby' },
      ],
    });
    expect(shown.members[1]?.epoch).toBeUndefined();
    // The first member fixed the goal; then the members' own transitions.
    expect(shown.transitions.map((t) => `${t.type} ${t.member}`.trim())).toEqual([
      'goal',
      'join a',
      'activate a',
      'join b',
    ]);
    expect(shown.transitions[2]?.epoch).toBe(a.epoch);
    const times = shown.transitions.map((t) => t.time);
    expect(times).toEqual([...times].sort((x, y) => x - y));
    expect(groups.find((g) => g.group === other)?.members.map((m) => m.id)).toEqual(['c']);
  });

  it('prints one group, as JSON, when given its name', async () => {
    const group = uniqueGroup('status-one');
    const { a } = await activeAndStandby(group);

    const { code, stdout, stderr } = await understudy(['status', group, '--json', '--redis', server().url]);

    expect(code, stderr).toBe(0);
    const shown = JSON.parse(stdout) as StatusGroup;
    expect(shown).toMatchObject({
      group,
      activeCount: 1,
      members: [
        { id: 'a', rank: 1, weight: 300, state: 'active', epoch: a.epoch },
        { id: 'b', rank: 2, weight: 100, state: 'standby' },
      ],
    });
    expect(shown.transitions.map((t) => `${t.type} ${t.member}`.trim())).toEqual([
      'goal',
      'join a',
      'activate a',
      'join b',
    ]);
  });

  it('prints one group as a readable table with the group name and member ids without --json', async () => {
    const group = uniqueGroup('status-table');
    await activeAndStandby(group);

    const { code, stdout, stderr } = await understudy(['status', group, '--redis', server().url]);

    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`group ${group} · 1/1 active · 2 members`);
    expect(stdout).toMatch(/RANK\s+MEMBER\s+WEIGHT\s+STATE\s+EPOCH/);
    expect(stdout).toMatch(/^\s+1\s+a\s+300\s+active\s+\d+/m);
    expect(stdout).toMatch(/^\s+2\s+b\s+100\s+standby\s+-/m);
    expect(stdout).not.toContain('\u001b['); // no colour when stdout is not a terminal
  });

  it('prints every group as one sorted table line each, "1 member" in the singular', async () => {
    const db = `${server().url}/3`;
    const names = ['zeta', 'alpha', 'mid'].map((n) => uniqueGroup(`table-${n}`));
    // Database 3 of the server: only these groups.
    for (const [i, group] of names.entries()) {
      const member = await joinGroup({
        redis: db,
        group,
        memberId: `m${i}`,
        weight: 10,
        heartbeatInterval: H,
        activationInterval: A,
      });
      members.push(member);
      await untilActive(member);
    }
    const one = await understudy(['status', names[0] as string, '--redis', db]);
    const { code, stdout, stderr } = await understudy(['status', '--redis', db]);

    expect(one.stdout).toContain('· 1 member ·');
    expect(code, stderr).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^GROUP\s+ACTIVE\s+MEMBERS\s+VERSION\s+QUARANTINE\s+LAST TRANSITION$/);
    expect(lines.slice(1, -1).map((l) => l.split(/\s+/)[0])).toEqual([...names].sort());
    for (const line of lines.slice(1, -1)) expect(line).toMatch(/^\S+\s+1\/1\s+1\s+\d+\s+-\s+\S+ activate m\d/);
    expect(lines.at(-1)).toBe('3 groups · details: understudy status <group>');
  });

  it('exits 1 and says so for a group that does not exist', async () => {
    const { code, stdout, stderr } = await understudy(['status', uniqueGroup('nosuchgroup'), '--redis', server().url]);

    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^understudy: no group nosuchgroup-\S+ under prefix understudy on redis:/);
  });

  it('says so when the server has no groups', async () => {
    // Database 9 of the same server: nothing has been written there.
    const empty = `${server().url}/9`;

    const { code, stdout, stderr } = await understudy(['status', '--redis', empty]);

    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^no groups\b/);
  });
});

describe('understudy group set', { timeout: 90_000 }, () => {
  it('raises the active goal: the next member activates, and the output names the old and the new goal', async () => {
    const group = uniqueGroup('goal');
    const { a, b } = await activeAndStandby(group);

    const { code, stdout, stderr } = await understudy([
      'group',
      'set',
      group,
      '--active-goal',
      '2',
      '--redis',
      server().url,
    ]);

    expect(code, stderr).toBe(0);
    expect(stdout).toContain(`group ${group}: active goal 1 -> 2`);
    await untilActive(b, A + 2000);
    expect(a.state).toBe('active');
    expect(b.epoch).toBeGreaterThan(a.epoch ?? 0);
  });

  it('fails with a clear message and a non-zero exit on a group without members', async () => {
    const group = uniqueGroup('goal-empty');

    const { code, stderr } = await understudy(['group', 'set', group, '--active-goal', '2', '--redis', server().url]);

    expect(code, stderr).not.toBe(0);
    expect(stderr).toContain(`group ${group} has no members`);
  });
});

describe('exit codes of the read and admin commands', { timeout: 90_000 }, () => {
  it.each(['monitor g --json', 'status', 'group set g --active-goal 2'])(
    'understudy %s exits 3 when Redis cannot be reached',
    async (command) => {
      const port = await freePort();

      const { code, stderr } = await understudy([...command.split(' '), '--redis', `redis://127.0.0.1:${port}`]);

      expect(code, stderr).toBe(3);
      expect(stderr).toContain(`127.0.0.1:${port}`);
    },
  );

  it.each(['monitor bad{name', 'status bad{name', 'group set bad{name --active-goal 2'])(
    'understudy %s exits 2 and names the bad character of the group name',
    async (command) => {
      const { code, stderr } = await understudy([...command.split(' '), '--redis', server().url]);

      expect(code, stderr).toBe(2);
      expect(stderr).toContain('character "{" is not allowed');
    },
  );
});

describe('--help', { timeout: 90_000 }, () => {
  it.each(['run', 'monitor', 'status', 'group', 'group set', 'acl', 'demo'])(
    'understudy %s --help prints its usage and exits 0',
    async (command) => {
      const { code, stdout, stderr } = await understudy([...command.split(' '), '--help']);

      expect(code, stderr).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: understudy ${command} `));
    },
  );

  it('understudy --help lists every command', async () => {
    const { code, stdout, stderr } = await understudy(['--help']);

    expect(code, stderr).toBe(0);
    for (const command of ['run', 'monitor', 'status', 'queue', 'group', 'acl', 'demo']) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
  });
});

const FAST_Q = { heartbeatInterval: 50, activationInterval: 400 };

describe('understudy monitor over three servers (quorum mode)', { timeout: 90_000 }, () => {
  it.each([
    { mode: 'lines', flags: [] as string[] },
    { mode: 'json', flags: ['--json'] },
  ])(
    'shows each server’s reachability, and says when one is lost while a majority answers ($mode)',
    async ({ flags }) => {
      const quorum = await startRedisQuorum({ count: 3 });
      const group = uniqueGroup('monitor-quorum');
      const a = await joinGroup({ ...FAST_Q, redis: quorum.urls, group, memberId: 'a', weight: 10 });
      try {
        await waitFor(() => a.isActive(), 'a active', A + 5000);
        const watcher = new Cli(['monitor', group, ...flags, ...quorum.urls.flatMap((u) => ['--redis', u])]);
        await waitFor(
          () => watcher.stdout.includes(flags.length ? '"reachable":true' : 'servers: 3 of 3 reachable'),
          () => `every server shown reachable; it printed:\n${watcher.stdout}`,
          STARTUP_MS,
        );
        await quorum.kill(1);
        await waitFor(
          () =>
            flags.length
              ? watcher
                  .lines()
                  .map((l) => JSON.parse(l))
                  .some((o) => o.servers?.[1]?.reachable === false && o.servers?.[0]?.reachable === true)
              : watcher.stdout.includes('servers: 2 of 3 reachable (a quorum is 2)'),
          () => `server 2 shown lost; it printed:\n${watcher.stdout}`,
          15_000,
        );
        // The majority's view holds: a stays active, the monitor stays reachable.
        expect(watcher.stdout).not.toMatch(/Redis unreachable/);
        watcher.signal('SIGINT');
        expect((await watcher.result()).code).toBe(0);
      } finally {
        await a.leave().catch(() => undefined);
        await quorum.stop();
      }
    },
  );
});
