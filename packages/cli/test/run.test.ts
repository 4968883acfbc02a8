import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describeGroup, joinGroup, type Member, readHistory } from '@understudy/core';
import { freePort, type RedisServer, startChaosProxy, startRedis } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  Cli,
  hrNow,
  isAlive,
  killLeftoverClis,
  ProgramRecords,
  type ProgramStart,
  processesOfGroup,
  understudy,
  uniqueGroup,
  waitFor,
  whenDead,
} from './helpers.js';

/**
 * Heartbeat H and activation interval A, unless a test needs a wider A to tell timings apart.
 * Short, but not so short that a busy machine costs leases: the lease connection's command
 * timeout is 0.8 H, and with H = 50 a join or renewal on a loaded machine times out often.
 */
const H = 100;
const A = 1000;

let server: RedisServer;
let records: ProgramRecords;
const groups: string[] = [];
/** Members of the test process itself (not under test), left after each test. */
const placeholders: Member[] = [];

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await server.stop();
});

beforeEach(() => {
  records = new ProgramRecords();
});

// No program may outlive the test: once the wrappers are gone (a test that failed half-way
// may leave some: they are SIGKILLed here), every program recorded and every process of the
// test's groups must be gone too.
afterEach(async () => {
  await Promise.allSettled(placeholders.splice(0).map((m) => m.leave()));
  const killedWrappers = await killLeftoverClis();
  const recorded = records.starts().map((s) => s.pid);
  // A wrapper killed just now takes its program with it (pdeathsig), a moment later.
  if (killedWrappers.length > 0) await sleep(500);
  const orphans = [...new Set([...recorded.filter(isAlive), ...groups.flatMap(processesOfGroup)])];
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // it ended meanwhile
    }
  }
  records.remove();
  groups.length = 0;
  expect(orphans, 'programs still running after the test').toEqual([]);
});

function newGroup(label: string): string {
  const group = uniqueGroup(label);
  groups.push(group);
  return group;
}

interface Wrapper {
  group: string;
  memberId: string;
  weight: number;
  heartbeat?: number;
  activation?: number;
  /** The Redis to join through (default: the test's server); `--redis` given twice would ask for quorum mode. */
  redis?: string;
  /** More `run` options, before `--`. */
  options?: string[];
}

function runArgs(w: Wrapper, command: readonly string[]): string[] {
  return [
    'run',
    '--redis',
    w.redis ?? server.url,
    '--group',
    w.group,
    '--member-id',
    w.memberId,
    '--weight',
    String(w.weight),
    '--heartbeat',
    String(w.heartbeat ?? H),
    '--activation',
    String(w.activation ?? A),
    ...(w.options ?? []),
    '--',
    ...command,
  ];
}

/** `understudy run` of the fixture program, labelled with the member id. */
function run(w: Wrapper, ...flags: string[]): Cli {
  return new Cli(runArgs(w, records.command(w.memberId, ...flags)));
}

async function epochOf(group: string, memberId: string): Promise<number | undefined> {
  const snapshot = await describeGroup({ redis: server.url, group });
  return snapshot.members.find((m) => m.id === memberId)?.epoch;
}

/** Waits until the wrapper has joined, then (within `withinMs`) until its program has started. */
async function programOf(wrapper: Cli, label: string, withinMs: number): Promise<ProgramStart> {
  await wrapper.waitForStderr(/joined group/);
  return waitFor(
    () => records.starts(label)[0],
    () => `program ${label} to start; its wrapper printed:\n${wrapper.stderr}`,
    withinMs,
  );
}

/** SIGTERM: the wrapper leaves the group and exits 0. */
async function leaveGracefully(wrapper: Cli): Promise<void> {
  wrapper.signal('SIGTERM');
  const { code, stderr } = await wrapper.result();
  expect(code, stderr).toBe(0);
}

// Generous: a test may start several wrappers, and each start-up may take seconds on a loaded machine.
describe('understudy run', { timeout: 120_000 }, () => {
  it('starts the program only on the active, highest-weight member, with its epoch, group and member id in the environment', async () => {
    const group = newGroup('only-active');
    // A placeholder holds the slot until both wrappers have joined, however long their
    // start-ups take; when it leaves, the slot goes to the best of them at once.
    const placeholder = await joinGroup({
      redis: server.url,
      group,
      memberId: 'placeholder',
      weight: 65535,
      heartbeatInterval: H,
      activationInterval: A,
    });
    placeholders.push(placeholder);
    await waitFor(() => placeholder.state === 'active', 'the placeholder to be active', A + 5000);
    const low = run({ group, memberId: 'low', weight: 100 });
    const high = run({ group, memberId: 'high', weight: 200 });
    await low.waitForStderr(/joined group/);
    await high.waitForStderr(/joined group/);
    await placeholder.leave();

    const started = await programOf(high, 'high', 5000);
    await sleep(10 * H);

    expect(records.starts().map((s) => s.label)).toEqual(['high']);
    expect(started.group).toBe(group);
    expect(started.memberId).toBe('high');
    expect(started.epoch).toMatch(/^\d+$/);
    expect(Number(started.epoch)).toBe(await epochOf(group, 'high'));
    expect(isAlive(started.pid)).toBe(true);
    expect(low.running).toBe(true);

    await leaveGracefully(low);
    await leaveGracefully(high);
    expect(records.starts('low')).toEqual([]);
  });

  it('kills the program at once when the active wrapper is SIGKILLed, and the standby starts its own after the lease lapses, with a larger epoch', async () => {
    const group = newGroup('sigkill');
    const activation = 1000;
    const high = run({ group, memberId: 'high', weight: 200, activation });
    const first = await programOf(high, 'high', activation + 10_000);
    const low = run({ group, memberId: 'low', weight: 100, activation });
    await low.waitForStderr(/joined group/);

    const killedAt = high.signal('SIGKILL');
    const diedAt = await whenDead(first.pid, activation);
    const second = await programOf(low, 'low', activation + 5000);
    console.info(
      `SIGKILL of the active wrapper: its program gone after ${Math.round(diedAt - killedAt)} ms, ` +
        `the standby's program started after ${Math.round(second.startedAt - killedAt)} ms (A = ${activation} ms)`,
    );

    // Safety: the two programs never ran at the same time.
    expect(diedAt).toBeLessThan(second.startedAt);
    // pdeathsig: the program dies with its wrapper, long before the lease lapses.
    expect(diedAt - killedAt).toBeLessThan(activation / 2);
    // Nobody told the group: the standby waited for the lease, then took over promptly.
    expect(second.startedAt - killedAt).toBeGreaterThan(activation / 2);
    expect(second.startedAt - killedAt).toBeLessThan(activation + 1500);
    expect(BigInt(second.epoch ?? 0)).toBeGreaterThan(BigInt(first.epoch ?? 0));
    expect((await high.result()).signal).toBe('SIGKILL');

    await leaveGracefully(low);
  });

  it('on SIGTERM stops the program with SIGTERM, leaves, exits 0, and the standby starts its program without waiting for the lease', async () => {
    const group = newGroup('sigterm');
    // A wide A, so that "without waiting for the lease" is well apart from waiting for it.
    const activation = 3000;
    const high = run({ group, memberId: 'high', weight: 200, activation });
    const first = await programOf(high, 'high', activation + 10_000);
    const low = run({ group, memberId: 'low', weight: 100, activation });
    await low.waitForStderr(/joined group/);

    const termAt = high.signal('SIGTERM');
    const second = await programOf(low, 'low', activation + 5000);
    const { code, stderr } = await high.result();
    console.info(
      `SIGTERM to the active wrapper: the standby's program started after ${Math.round(second.startedAt - termAt)} ms ` +
        `(A = ${activation} ms)`,
    );

    expect(code, stderr).toBe(0);
    expect(stderr).toContain('SIGTERM: leaving the group');
    const term = records.terms('high')[0];
    expect(term?.pid).toBe(first.pid);
    // Demote before promote: the old program had its SIGTERM and exited before the new one started.
    expect(term?.at).toBeGreaterThanOrEqual(termAt);
    expect(term?.at).toBeLessThan(second.startedAt);
    expect(isAlive(first.pid)).toBe(false);
    expect(second.startedAt - termAt).toBeLessThan(activation / 2);
    expect(BigInt(second.epoch ?? 0)).toBeGreaterThan(BigInt(first.epoch ?? 0));

    await leaveGracefully(low);
  });

  it.each(['SIGINT', 'SIGHUP'] as const)(
    'leaves the group on %s like on SIGTERM, stopping the program with SIGTERM and exiting 0',
    async (signal) => {
      const group = newGroup(signal.toLowerCase());
      const wrapper = run({ group, memberId: 'only', weight: 100 });
      const started = await programOf(wrapper, 'only', A + 10_000);

      wrapper.signal(signal);
      const { code, stderr } = await wrapper.result();

      expect(code, stderr).toBe(0);
      expect(records.terms('only').map((t) => t.pid)).toEqual([started.pid]);
      expect((await describeGroup({ redis: server.url, group })).members).toEqual([]);
    },
  );

  it('leaves at once, rather than when its lease lapses, on a SIGTERM that comes while it is still joining', async () => {
    const group = newGroup('term-joining');
    const activation = 10_000;
    const proxy = await startChaosProxy({ target: { host: server.host, port: server.port } });
    try {
      // Every reply takes 200 ms more: the join takes a second or more, and the SIGTERM lands in it.
      proxy.setDelay(100);
      const wrapper = new Cli(
        runArgs(
          {
            group,
            memberId: 'slow',
            weight: 100,
            activation,
            redis: proxy.url(server.url),
            options: ['--active-goal', '1'],
          },
          records.command('slow'),
        ),
      );
      await waitFor(() => proxy.connectionCount >= 2, 'the wrapper to connect', 30_000);
      wrapper.signal('SIGTERM');
      const { code, stderr } = await wrapper.result();

      expect(code, stderr).toBe(0);
      // Well before the lease (10 s) could have lapsed, nobody is left in the group.
      expect((await describeGroup({ redis: server.url, group })).members).toEqual([]);
    } finally {
      await proxy.close();
    }
  });

  it('leaves the group and exits with the code of a program that exits by itself while active', async () => {
    const group = newGroup('exit-code');
    const wrapper = run({ group, memberId: 'only', weight: 100 }, '--exit', '7');

    const { code, stderr } = await wrapper.result();

    expect(records.starts('only')).toHaveLength(1);
    expect(code, stderr).toBe(7);
    expect(stderr).toContain('exit code 7');
    // It left (a leave transition, no live member), rather than letting its lease lapse.
    const history = await readHistory({ redis: server.url, group });
    expect(history.filter((t) => t.member === 'only').map((t) => t.type)).toContain('leave');
    expect((await describeGroup({ redis: server.url, group })).members).toEqual([]);
  });

  it('exits with 128 + n when the program is killed by signal n while active', async () => {
    const group = newGroup('killed');
    const wrapper = run({ group, memberId: 'only', weight: 100 });
    const started = await programOf(wrapper, 'only', A + 10_000);

    process.kill(started.pid, 'SIGKILL');
    const { code, stderr } = await wrapper.result();

    expect(code, stderr).toBe(128 + 9);
    expect(stderr).toContain('SIGKILL');
    expect((await describeGroup({ redis: server.url, group })).members).toEqual([]);
  });

  it('exits 127 and names the program when the program is not found', async () => {
    const group = newGroup('not-found');
    const missing = 'understudy-test-no-such-program';

    const { code, stderr } = await understudy(runArgs({ group, memberId: 'only', weight: 100 }, [missing]));

    expect(code, stderr).toBe(127);
    expect(stderr).toContain(missing);
    expect((await describeGroup({ redis: server.url, group })).members).toEqual([]);
  });

  it('exits 127 at once on a standby too: a misspelled program is not found only at failover', async () => {
    const group = newGroup('not-found-standby');
    const active = run({ group, memberId: 'active', weight: 200 });
    await programOf(active, 'active', A + 10_000);

    const { code, stderr } = await understudy(
      runArgs({ group, memberId: 'standby', weight: 100 }, ['understudy-test-no-such-program']),
    );

    expect(code, stderr).toBe(127);
    expect(stderr).toContain('understudy-test-no-such-program: not found in PATH');
    expect(stderr).not.toContain('joined group');
    await leaveGracefully(active);
  });

  it('exits 1 and names --member-id when a live member already uses the id', async () => {
    const group = newGroup('duplicate');
    const first = run({ group, memberId: 'same', weight: 100 });
    await first.waitForStderr(/joined group/);

    const { code, stderr } = await understudy(
      runArgs({ group, memberId: 'same', weight: 200 }, records.command('twin')),
    );

    expect(code, stderr).toBe(1);
    expect(stderr).toContain('--member-id same: a live member of group');
    await leaveGracefully(first);
  });

  it('follows the group’s active goal when --active-goal is not given', async () => {
    const group = newGroup('follow-goal');
    const first = run({ group, memberId: 'first', weight: 200, options: ['--active-goal', '1'] });
    await programOf(first, 'first', A + 10_000);
    expect((await understudy(['group', 'set', group, '--redis', server.url, '--active-goal', '2'])).code).toBe(0);

    const second = run({ group, memberId: 'second', weight: 100 });
    await programOf(second, 'second', A + 10_000);

    expect((await describeGroup({ redis: server.url, group })).activeCount).toBe(2);
    await leaveGracefully(second);
    await leaveGracefully(first);
  });

  it('says why the first member of a new group waits before it activates', async () => {
    const group = newGroup('first-wait');
    const wrapper = run({ group, memberId: 'only', weight: 100 });
    await programOf(wrapper, 'only', A + 10_000);

    expect(wrapper.stderr).toMatch(/no member is activated for \d+\.\d s: the group is new/);
    await leaveGracefully(wrapper);
  });

  it('bounds a hanging --prepare-cmd by --preparation and kills it with its process group', async () => {
    const group = newGroup('prepare-hangs');
    const activation = 3000;
    const preparation = 300;
    const pidFile = join(records.dir, 'prepare.pid');
    const wrapper = run({
      group,
      memberId: 'only',
      weight: 100,
      activation,
      options: ['--preparation', String(preparation), '--prepare-cmd', `sleep 1000 & echo $! > ${pidFile}; wait`],
    });
    await wrapper.waitForStderr(/preparing/);
    const preparingAt = hrNow();
    const started = await records.waitForStart('only', activation + 5000);
    await wrapper.waitForStderr(/did not end within --preparation 300 ms: killing it/);

    const sleeper = Number(readFileSync(pidFile, 'utf8'));
    expect(await whenDead(sleeper, 2000)).toBeGreaterThan(0);
    // Activation waited for the prepare command's bound, not for a whole activation interval.
    expect(started.startedAt - preparingAt).toBeLessThan(activation - 500);
    await leaveGracefully(wrapper);
  });

  it('exits 126 when the program cannot be executed', async () => {
    const group = newGroup('not-executable');

    const script = join(records.dir, 'not-executable.sh');
    writeFileSync(script, '#!/bin/sh\nexit 0\n', { mode: 0o644 });

    const { code, stderr } = await understudy(runArgs({ group, memberId: 'only', weight: 100 }, [script]));

    expect(code, stderr).toBe(126);
    expect(stderr).toMatch(/permission denied/i);
  });

  it.each([
    { problem: 'no --group', options: ['--weight', '100'], message: /--group/ },
    { problem: '--weight 0', options: ['--group', 'G', '--weight', '0'], message: /--weight.*\b0\b/ },
    {
      problem: '--weight above 65535',
      options: ['--group', 'G', '--weight', '65536'],
      message: /weight.*65536/,
    },
    {
      problem: '--stop-timeout beyond what the lease leaves after a missed heartbeat',
      options: [
        '--group',
        'G',
        '--weight',
        '100',
        '--heartbeat',
        '100',
        '--activation',
        '1000',
        '--stop-timeout',
        '700',
      ],
      message: /--stop-timeout 700 is too long for --activation 1000 and --heartbeat 100 \(at most 690 here\)/,
    },
    {
      problem: '--activation too short to stop the program in',
      options: ['--group', 'G', '--weight', '100', '--heartbeat', '500', '--activation', '1000'],
      message: /--activation 1000 with --heartbeat 500 leaves no time to stop the program/,
    },
    {
      problem: '--preparation outside (H, A): the flags are named, not the library options',
      options: ['--group', 'G', '--weight', '100', '--heartbeat', '100', '--activation', '1000', '--preparation', '50'],
      message:
        /^understudy: --preparation 50: must be 0 \(no prepare hints\) or between --heartbeat \(100 ms\) and --activation/m,
    },
    { problem: 'no command after --', options: ['--group', 'G', '--weight', '100', '--'], message: /command/ },
  ])('exits 2 and names the problem on invalid usage: $problem', async ({ options, message }) => {
    const group = newGroup('usage');

    const { code, stderr } = await understudy([
      'run',
      '--redis',
      server.url,
      ...options.map((o) => (o === 'G' ? group : o)),
      ...(options.includes('--') ? [] : ['--', ...records.command('never')]),
    ]);

    expect(code, stderr).toBe(2);
    expect(stderr).toMatch(message);
    expect(records.starts()).toEqual([]);
    expect((await describeGroup({ redis: server.url, group })).version).toBe(0);
  });

  it('exits 3 when Redis cannot be reached', async () => {
    const port = await freePort();
    const group = newGroup('unreachable');

    const { code, stderr } = await understudy([
      'run',
      '--redis',
      `redis://127.0.0.1:${port}`,
      '--group',
      group,
      '--weight',
      '100',
      '--heartbeat',
      String(H),
      '--activation',
      String(A),
      '--',
      ...records.command('never'),
    ]);

    expect(code, stderr).toBe(3);
    expect(stderr).toContain(`127.0.0.1:${port}`);
    expect(records.starts()).toEqual([]);
  });

  it.each([
    { flag: '--active-goal', options: ['--active-goal', '2'], advice: /leave --active-goal out/ },
    { flag: '--activation', options: ['--activation', String(A + 100)], advice: new RegExp(`give --activation ${A}`) },
  ])('exits 4 when the group runs with another $flag, and says what to do', async ({ flag, options, advice }) => {
    const group = newGroup('mismatch');
    const first = run({ group, memberId: 'first', weight: 100 });
    await first.waitForStderr(/joined group/);

    // The later of two equal options counts: `options` override the defaults runArgs gives.
    const { code, stderr } = await understudy(
      runArgs({ group, memberId: 'second', weight: 200, options }, records.command('second')),
    );

    expect(code, stderr).toBe(4);
    expect(stderr).toContain(`runs with ${flag} `);
    expect(stderr).toMatch(advice);
    expect(records.starts('second')).toEqual([]);
    expect(first.running).toBe(true);
    await leaveGracefully(first);
  });

  it('exits 4 when a rejoin finds the group re-formed with another activation interval', async () => {
    const group = newGroup('rejoin-mismatch');
    const proxy = await startChaosProxy({ target: { host: server.host, port: server.port } });
    try {
      const wrapper = run({ group, memberId: 'old', weight: 100, redis: proxy.url(server.url) });
      const started = await programOf(wrapper, 'old', A + 10_000);
      // Cut off until its lease lapsed; meanwhile the group re-forms with another A.
      proxy.blackhole(true);
      await whenDead(started.pid, 2 * A);
      await sleep(A + 500);
      placeholders.push(
        await joinGroup({
          redis: server.url,
          group,
          memberId: 'new',
          weight: 50,
          heartbeatInterval: H,
          activationInterval: 2 * A,
        }),
      );
      proxy.heal();
      proxy.reset();

      const { code, stderr } = await wrapper.result();
      expect(code, stderr).toBe(4);
      expect(stderr).toContain('PARAM_MISMATCH');
      expect(records.starts('old')).toHaveLength(1);
    } finally {
      await proxy.close();
    }
  });

  it('SIGKILLs a program that ignores SIGTERM once --stop-timeout has passed', async () => {
    const group = newGroup('stop-timeout');
    const activation = 1000;
    const stopTimeout = 500;
    const wrapper = run(
      { group, memberId: 'stubborn', weight: 100, activation, options: ['--stop-timeout', String(stopTimeout)] },
      '--ignore-term',
    );
    const started = await programOf(wrapper, 'stubborn', activation + 10_000);

    const termAt = wrapper.signal('SIGTERM');
    await records.waitForTerm('stubborn');
    const diedAt = await whenDead(started.pid, stopTimeout + 5000);
    const { code, stderr } = await wrapper.result();

    expect(code, stderr).toBe(0);
    expect(stderr).toContain('stopped (signal SIGKILL)');
    // Timers may fire a millisecond early; nothing else may cut the grace short.
    expect(diedAt - termAt).toBeGreaterThanOrEqual(stopTimeout - 2);
    expect(diedAt - termAt).toBeLessThan(stopTimeout + 2000);
  });

  it('stops the program at once on a second SIGTERM, without waiting for --stop-timeout', async () => {
    const group = newGroup('second-signal');
    const activation = 4000;
    const stopTimeout = 3000;
    const wrapper = run(
      { group, memberId: 'stubborn', weight: 100, activation, options: ['--stop-timeout', String(stopTimeout)] },
      '--ignore-term',
    );
    const started = await programOf(wrapper, 'stubborn', activation + 10_000);
    wrapper.signal('SIGTERM');
    await records.waitForTerm('stubborn');
    await wrapper.waitForStderr(/stopping/);

    const againAt = wrapper.signal('SIGTERM');
    const diedAt = await whenDead(started.pid, stopTimeout + 5000);
    const { code, stderr } = await wrapper.result();

    expect(stderr).toContain('SIGTERM again');
    expect(code, stderr).toBe(128 + 15);
    expect(diedAt - againAt).toBeLessThan(stopTimeout / 3);
  });
});
