import { createServer, type Socket } from 'node:net';
import {
  ConfigError,
  type JoinOptions,
  joinGroup,
  LeftError,
  type Member,
  MemberExistsError,
  ParamMismatchError,
  RedisUnavailableError,
  type RenewalEvent,
  setActiveGoal,
  UnderstudyError,
} from '@understudy/core';
import { groupKeys } from '@understudy/core/testing';
import { freePort } from '@understudy/testkit';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { FAST, fileServer, memberFactory, uniqueGroup, waitFor } from './helpers.js';

const { server, observer } = fileServer();
const join = memberFactory(server);

const A = FAST.activationInterval;
const H = FAST.heartbeatInterval;
/** How much later than due a loaded 2-core machine may get something done. */
const LATE_MS = 600;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Names of the library's connections to the test server (lease, events, admin). */
async function understudyConnections(): Promise<string[]> {
  const list = String(await observer().call('CLIENT', 'LIST'));
  return list
    .split('\n')
    .map((line) => /\bname=(\S*)/.exec(line)?.[1] ?? '')
    .filter((name) => name.startsWith('understudy-'));
}

/** Waits until the server sees exactly `count` connections of the library (closing takes a moment). */
async function expectConnections(count: number): Promise<void> {
  const deadline = performance.now() + 2000;
  let names = await understudyConnections();
  while (names.length !== count && performance.now() < deadline) {
    await sleep(10);
    names = await understudyConnections();
  }
  expect(names, 'the library’s connections on the server').toHaveLength(count);
}

/** Joins with options that must be refused and returns the error; a member that joins anyway leaves. */
async function refusal(options: Partial<JoinOptions>): Promise<unknown> {
  let member: Member;
  try {
    member = await joinGroup({ redis: server().url, group: uniqueGroup('v'), weight: 10, ...FAST, ...options });
  } catch (error) {
    return error;
  }
  await member.leave();
  throw new Error(`joinGroup accepted ${JSON.stringify({ ...options, redis: undefined })}`);
}

/** The error of a call that must fail, whether it throws or returns a promise that rejects. */
async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('the call succeeded; expected it to fail');
}

function expectConfigError(error: unknown, field: string, value: string, rule: RegExp): void {
  expect(error).toBeInstanceOf(ConfigError);
  expect(error).toMatchObject({ code: 'CONFIG', field });
  const { message } = error as ConfigError;
  expect(message).toContain(field);
  expect(message).toContain(value);
  expect(message).toMatch(rule);
}

interface InvalidCase {
  name: string;
  options: Partial<JoinOptions>;
  field: string;
  /** The value as the message shows it. */
  value: string;
  rule: RegExp;
}

const longName = 'g'.repeat(129);
const invalidJoins: InvalidCase[] = [
  { name: 'an empty group name', options: { group: '' }, field: 'group', value: '""', rule: /1-128 characters/ },
  {
    name: 'a group name of 129 characters',
    options: { group: longName },
    field: 'group',
    value: longName,
    rule: /longer than 128/,
  },
  { name: 'a group name with a brace', options: { group: 'a{b' }, field: 'group', value: '"a{b"', rule: /"\{"/ },
  { name: 'a group name with a closing brace', options: { group: 'ab}' }, field: 'group', value: 'ab}', rule: /"\}"/ },
  { name: 'a group name with a colon', options: { group: 'a:b' }, field: 'group', value: '"a:b"', rule: /":"/ },
  { name: 'a group name with a space', options: { group: 'a b' }, field: 'group', value: '"a b"', rule: /" "/ },
  { name: 'a weight of 0', options: { weight: 0 }, field: 'weight', value: '= 0', rule: /integer from 1 to 65535/ },
  { name: 'a weight of -1', options: { weight: -1 }, field: 'weight', value: '-1', rule: /integer from 1 to 65535/ },
  { name: 'a weight of 1.5', options: { weight: 1.5 }, field: 'weight', value: '1.5', rule: /integer from 1/ },
  { name: 'a weight of 65536', options: { weight: 65536 }, field: 'weight', value: '65536', rule: /to 65535/ },
  {
    name: 'a weight given as a string',
    options: { weight: '10' as unknown as number },
    field: 'weight',
    value: '"10"',
    rule: /integer from 1 to 65535/,
  },
  { name: 'an active goal of 0', options: { activeGoal: 0 }, field: 'activeGoal', value: '= 0', rule: /integer/ },
  { name: 'an active goal of 1.5', options: { activeGoal: 1.5 }, field: 'activeGoal', value: '1.5', rule: /integer/ },
  {
    name: 'a heartbeat interval equal to the activation interval',
    options: { heartbeatInterval: 400, activationInterval: 400 },
    field: 'activationInterval',
    value: '400',
    rule: /greater than heartbeatInterval/,
  },
  {
    name: 'a heartbeat interval above the activation interval',
    options: { heartbeatInterval: 500, activationInterval: 400 },
    field: 'activationInterval',
    value: '400',
    rule: /greater than heartbeatInterval \(500 ms\)/,
  },
  {
    // H = 100 ms: command timeout 80 ms; A·(1−ρ) − δ = 148.5 − 2 is not above 180 ms.
    name: 'intervals that can never hold a lease (A·(1−ρ) − δ not above H plus the command timeout)',
    options: { heartbeatInterval: 100, activationInterval: 150 },
    field: 'activationInterval',
    value: '150',
    rule: /cannot hold a lease: .* must exceed heartbeatInterval plus the command timeout \(100 \+ 80 = 180 ms\)/,
  },
  {
    name: 'a preparation interval between 0 and the heartbeat interval',
    options: { preparationInterval: 30 },
    field: 'preparationInterval',
    value: '30',
    rule: /between heartbeatInterval/,
  },
  {
    name: 'a preparation interval equal to the heartbeat interval',
    options: { preparationInterval: H },
    field: 'preparationInterval',
    value: String(H),
    rule: /between heartbeatInterval/,
  },
  {
    name: 'a preparation interval equal to the activation interval',
    options: { preparationInterval: A },
    field: 'preparationInterval',
    value: String(A),
    rule: /and activationInterval/,
  },
  {
    name: 'a preparation interval above the activation interval',
    options: { preparationInterval: A + 50 },
    field: 'preparationInterval',
    value: String(A + 50),
    rule: /and activationInterval/,
  },
  {
    name: 'a negative heartbeat interval',
    options: { heartbeatInterval: -50 },
    field: 'heartbeatInterval',
    value: '-50',
    rule: /whole number of milliseconds/,
  },
  {
    name: 'a negative preparation interval',
    options: { preparationInterval: -1 },
    field: 'preparationInterval',
    value: '-1',
    rule: /whole number of milliseconds/,
  },
  {
    name: 'a negative activation interval',
    options: { activationInterval: -400 },
    field: 'activationInterval',
    value: '-400',
    rule: /whole number of milliseconds/,
  },
  {
    name: 'a heartbeat interval of 0',
    options: { heartbeatInterval: 0 },
    field: 'heartbeatInterval',
    value: '= 0',
    rule: /at least/,
  },
  {
    name: 'a heartbeat interval that is not a whole number',
    options: { heartbeatInterval: 50.5 },
    field: 'heartbeatInterval',
    value: '50.5',
    rule: /whole number/,
  },
  {
    name: 'an activation interval that is not a whole number',
    options: { activationInterval: 400.5 },
    field: 'activationInterval',
    value: '400.5',
    rule: /whole number/,
  },
  { name: 'a member id with braces', options: { memberId: 'a{b}' }, field: 'memberId', value: '"a{b}"', rule: /1-200/ },
  { name: 'an empty member id', options: { memberId: '' }, field: 'memberId', value: '""', rule: /1-200/ },
  { name: 'a key prefix with braces', options: { prefix: 'us{x}' }, field: 'prefix', value: '"us{x}"', rule: /1-64/ },
  { name: 'an empty key prefix', options: { prefix: '' }, field: 'prefix', value: '""', rule: /1-64/ },
  { name: 'a key prefix with a space', options: { prefix: 'u s' }, field: 'prefix', value: '"u s"', rule: /1-64/ },
  { name: 'a clock drift of 50 %', options: { clockDrift: 0.5 }, field: 'clockDrift', value: '0.5', rule: /fraction/ },
  {
    name: 'a listener that is not a function',
    options: { listeners: { renewal: 'log' as unknown as () => void } },
    field: 'listeners.renewal',
    value: '"log"',
    rule: /must be a function/,
  },
  {
    name: 'a missing Redis',
    options: { redis: undefined as unknown as string },
    field: 'redis',
    value: 'undefined',
    rule: /ioredis client/,
  },
];

describe('joinGroup validates its options', () => {
  it.each(invalidJoins.map((c) => [c.name, c] as const))(
    'refuses %s with a ConfigError naming the field, value and rule, and opens no connection',
    async (_name, { options, field, value, rule }) => {
      expectConfigError(await refusal(options), field, value, rule);
      await expectConnections(0);
    },
  );

  it('attaches the listeners it is given before the join, so that they hear the join’s own renewal', async () => {
    const renewals: RenewalEvent[] = [];
    const listeners = { renewal: (event: RenewalEvent) => renewals.push(event) };
    await join({ group: uniqueGroup('v'), memberId: 'heard', weight: 10, listeners });
    expect(renewals).toHaveLength(1);
    expect(renewals[0]).toMatchObject({ outcome: 'ok' });
  });

  it('accepts a group name of 128 characters', async () => {
    const group = `${uniqueGroup('v')}-`.padEnd(128, 'x');
    const member = await join({ group, memberId: 'long', weight: 10 });
    await waitFor(() => member.isActive(), 'the member of the long-named group active');
  });
});

describe('the group’s parameters', () => {
  it('refuses a member that asks for another active goal, naming the group, field, requested and current values', async () => {
    const group = uniqueGroup('v');
    await join({ group, memberId: 'first', weight: 10 });
    const error = await refusal({ group, memberId: 'second', activeGoal: 2 });
    expect(error).toBeInstanceOf(ParamMismatchError);
    expect(error).toMatchObject({ code: 'PARAM_MISMATCH', group, field: 'activeGoal', requested: 2, current: 1 });
    const { message } = error as ParamMismatchError;
    expect(message).toContain(group);
    expect(message).toContain('activeGoal = 1');
    expect(message).toContain('asked for 2');
    expect(await observer().hkeys(groupKeys(group).members)).toEqual(['first']);
  });

  it('refuses a member that asks for another activation interval', async () => {
    const group = uniqueGroup('v');
    await join({ group, memberId: 'first', weight: 10 });
    const error = await refusal({ group, memberId: 'second', activationInterval: A + 100 });
    expect(error).toBeInstanceOf(ParamMismatchError);
    expect(error).toMatchObject({
      code: 'PARAM_MISMATCH',
      group,
      field: 'activationInterval',
      requested: A + 100,
      current: A,
    });
    const { message } = error as ParamMismatchError;
    expect(message).toContain(group);
    expect(message).toContain(`activationInterval = ${A}`);
    expect(message).toContain(`asked for ${A + 100}`);
  });

  it('accepts a member with another heartbeat interval, logs a warning, and keeps it live at its own pace', async () => {
    const group = uniqueGroup('v');
    const lines: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void lines.push(line) });
    const first = await join({ group, memberId: 'first', weight: 20 });
    const slower = await join({ group, memberId: 'slower', weight: 10, heartbeatInterval: 2 * H, logger });
    await waitFor(() => lines.some((l) => l.includes('heartbeatInterval differs')), 'the warning');
    await sleep(A * 2);
    expect((await observer().hkeys(groupKeys(group).members)).sort()).toEqual(['first', 'slower']);
    expect(slower.state).toBe('standby');
    await first.leave();
    await waitFor(() => slower.isActive(), 'slower active after first left');
  });
});

describe('member ids', () => {
  it('refuses a member id that a live member of the group uses, and leaves that member undisturbed', async () => {
    const group = uniqueGroup('v');
    const twin = await join({ group, memberId: 'twin', weight: 10 });
    await waitFor(() => twin.isActive(), 'twin active');
    const epoch = twin.epoch;
    const error = await refusal({ group, memberId: 'twin', weight: 20 });
    expect(error).toBeInstanceOf(MemberExistsError);
    expect(error).toMatchObject({ code: 'MEMBER_EXISTS', group, memberId: 'twin' });
    expect((error as Error).message).toContain(group);

    await sleep(H * 4);
    expect(twin.isActive()).toBe(true);
    expect(twin.epoch).toBe(epoch);
    expect(JSON.parse((await observer().hget(groupKeys(group).members, 'twin')) ?? '{}')).toMatchObject({ w: 10 });
  });

  it('frees a member id once its member left', async () => {
    const group = uniqueGroup('v');
    const first = await join({ group, memberId: 'reused', weight: 10 });
    await first.leave();
    const again = await join({ group, memberId: 'reused', weight: 10 });
    await waitFor(() => again.isActive(), 'the member with the reused id active');
  });
});

describe('a refused join leaves nothing running', () => {
  it('closes the connections it opened for a refused member', async () => {
    const group = uniqueGroup('v');
    await join({ group, memberId: 'first', weight: 10 });
    await expectConnections(2); // one lease connection and one subscriber, shared by the process
    // Another URL for the same server: the refused member opens connections of its own.
    const ownUrl = `${server().url}/0`;
    expect(await refusal({ redis: ownUrl, group, memberId: 'mismatch', activeGoal: 2 })).toBeInstanceOf(
      ParamMismatchError,
    );
    await expectConnections(2);
    expect(await refusal({ redis: ownUrl, group, memberId: 'first' })).toBeInstanceOf(UnderstudyError);
    await expectConnections(2);
  });

  it('releases its share of the connections it shared with a live member', async () => {
    const group = uniqueGroup('v');
    const first = await join({ group, memberId: 'first', weight: 10 });
    expect(await refusal({ group, memberId: 'mismatch', activeGoal: 2 })).toBeInstanceOf(ParamMismatchError);
    expect(await refusal({ group, memberId: 'first' })).toBeInstanceOf(UnderstudyError);
    await first.leave();
    await expectConnections(0);
  });
});

describe('an unreachable Redis', () => {
  it('refuses to join with RedisUnavailableError when nothing listens at the address, and stops trying', async () => {
    const port = await freePort();
    const started = performance.now();
    const error = await refusal({ redis: `redis://127.0.0.1:${port}` });
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(RedisUnavailableError);
    expect(error).toMatchObject({ code: 'REDIS_UNAVAILABLE' });
    expect((error as Error).message).toContain(`127.0.0.1:${port}`);
    expect(elapsed).toBeLessThan(A + LATE_MS);

    // Nothing keeps reconnecting in the background: a listener that opens the port now hears nothing.
    let attempts = 0;
    const listener = createServer((socket) => {
      attempts += 1;
      socket.destroy();
    });
    await new Promise<void>((resolve) => listener.listen(port, '127.0.0.1', resolve));
    await sleep(A + 200);
    await new Promise((resolve) => listener.close(resolve));
    expect(attempts).toBe(0);
  });

  it('refuses to join a Redis that accepts connections but never answers, within about the activation interval', async () => {
    const open = new Set<Socket>();
    let accepted = 0;
    const silent = createServer((socket) => {
      accepted += 1;
      open.add(socket);
      socket.on('close', () => open.delete(socket));
      socket.on('error', () => undefined);
      socket.resume(); // read and ignore: it sees the client's FIN
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const address = silent.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    try {
      const started = performance.now();
      const error = await refusal({ redis: `redis://127.0.0.1:${port}` });
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(RedisUnavailableError);
      expect(error).toMatchObject({ code: 'REDIS_UNAVAILABLE' });
      expect(elapsed).toBeLessThan(A + LATE_MS);
      expect(accepted).toBeGreaterThan(0);
      await waitFor(() => open.size === 0, 'the refused member’s sockets to close', 2000);
      const before = accepted;
      await sleep(A + 200);
      expect(accepted).toBe(before);
    } finally {
      for (const socket of open) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});

describe('setWeight validates its argument', () => {
  it('refuses 0, -1, 1.5, 65536 and a string with a ConfigError, and keeps the weight', async () => {
    const group = uniqueGroup('v');
    const member = await join({ group, memberId: 'm', weight: 10 });
    const invalid: [unknown, string][] = [
      [0, '= 0'],
      [-1, '-1'],
      [1.5, '1.5'],
      [65536, '65536'],
      ['20', '"20"'],
    ];
    for (const [weight, shown] of invalid) {
      const error = await member.setWeight(weight as number).then(
        () => undefined,
        (e: unknown) => e,
      );
      expectConfigError(error, 'weight', shown, /integer from 1 to 65535/);
    }
    expect(member.weight).toBe(10);
    expect(JSON.parse((await observer().hget(groupKeys(group).members, 'm')) ?? '{}')).toMatchObject({ w: 10 });
  });
});

describe('setActiveGoal validates its arguments', () => {
  it('refuses a group that has no members, and leaves no connection open', async () => {
    const group = uniqueGroup('v');
    const error = await setActiveGoal({ redis: server().url, group, activeGoal: 2 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    await expectConnections(0);
    expect(error).toBeInstanceOf(UnderstudyError);
    expect((error as Error).message).toContain(group);
    expect((error as Error).message).toMatch(/no members/);
  });

  it('refuses a group whose last member left', async () => {
    const group = uniqueGroup('v');
    const member = await join({ group, memberId: 'only', weight: 10 });
    await member.leave();
    await expect(setActiveGoal({ redis: server().url, group, activeGoal: 2 })).rejects.toThrow(/no members/);
  });

  it('refuses an invalid goal or group name with a ConfigError before connecting', async () => {
    const group = uniqueGroup('v');
    await join({ group, memberId: 'm', weight: 10 });
    const cases: [number, string][] = [
      [0, '= 0'],
      [1.5, '1.5'],
      [-1, '-1'],
    ];
    for (const [activeGoal, shown] of cases) {
      const error = await failure(() => setActiveGoal({ redis: server().url, group, activeGoal }));
      expectConfigError(error, 'activeGoal', shown, /integer from 1/);
    }
    const badGroup = await failure(() => setActiveGoal({ redis: server().url, group: 'a:b', activeGoal: 2 }));
    expectConfigError(badGroup, 'group', '"a:b"', /":"/);
    expect(await observer().hget(groupKeys(group).config, 'activeGoal')).toBe('1');
  });

  it('reports an invalid argument through the promise it returns, never by throwing synchronously', async () => {
    let returned: Promise<unknown> | undefined;
    expect(() => {
      returned = setActiveGoal({ redis: server().url, group: uniqueGroup('v'), activeGoal: 0 });
    }).not.toThrow();
    await expect(returned).rejects.toBeInstanceOf(ConfigError);
  });

  it('reports RedisUnavailableError when Redis cannot be reached', async () => {
    const port = await freePort();
    await expect(
      setActiveGoal({ redis: `redis://127.0.0.1:${port}`, group: uniqueGroup('v'), activeGoal: 2, timeout: A }),
    ).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
  });
});

describe('leaving', () => {
  it('refuses setWeight on a member that left with LeftError', async () => {
    const member = await join({ group: uniqueGroup('v'), memberId: 'm', weight: 10 });
    await member.leave();
    const error = await member.setWeight(20).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(LeftError);
    expect(error).toMatchObject({ code: 'LEFT' });
  });

  it('is idempotent: leave() twice deactivates once and ends in left', async () => {
    const group = uniqueGroup('v');
    const deactivations: string[] = [];
    const member = await join({
      group,
      memberId: 'm',
      weight: 10,
      onDeactivate: (info) => void deactivations.push(info.reason),
    });
    await waitFor(() => member.isActive(), 'member active');
    const states: string[] = [];
    member.on('state', ({ to }) => states.push(to));
    await Promise.all([member.leave(), member.leave()]);
    await member.leave();
    expect(member.state).toBe('left');
    expect(deactivations).toEqual(['leave']);
    expect(states).toEqual(['leaving', 'left']);
    expect(await observer().hexists(groupKeys(group).members, 'm')).toBe(0);
  });

  it('leaves when its AbortSignal aborts, handing the slot over', async () => {
    const group = uniqueGroup('v');
    const controller = new AbortController();
    const deactivations: string[] = [];
    const member = await join({
      group,
      memberId: 'aborted',
      weight: 20,
      signal: controller.signal,
      onDeactivate: (info) => void deactivations.push(info.reason),
    });
    const next = await join({ group, memberId: 'next', weight: 10 });
    await waitFor(() => member.isActive(), 'member active');
    controller.abort();
    await waitFor(() => member.state === 'left', 'the aborted member to leave');
    await waitFor(() => next.isActive(), 'next active');
    expect(deactivations).toEqual(['leave']);
  });

  it('refuses to join with an AbortSignal that already aborted, opening no connection', async () => {
    const controller = new AbortController();
    controller.abort();
    const error = await refusal({ signal: controller.signal });
    expect(error).toMatchObject({ name: 'AbortError' });
    await expectConnections(0);
  });

  it('leaves at the end of an `await using` block', async () => {
    const group = uniqueGroup('v');
    let scoped: Member | undefined;
    {
      await using member = await join({ group, memberId: 'scoped', weight: 10 });
      scoped = member;
      await waitFor(() => member.isActive(), 'scoped member active');
    }
    expect(scoped?.state).toBe('left');
    expect(await observer().hexists(groupKeys(group).members, 'scoped')).toBe(0);
  });
});
