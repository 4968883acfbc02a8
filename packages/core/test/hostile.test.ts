import {
  type Advisory,
  aclRules,
  ConfigError,
  CorruptStateError,
  describeGroup,
  joinGroup,
  type Member,
  monitorGroup,
  readHistory,
  setActiveGoal,
} from '@understudy/core';
import { type GroupKeys, groupKeys } from '@understudy/core/testing';
import type { ChainableCommander, Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { FAST, fileServer, Timeline, trackLibraryTimers, uniqueGroup, waitFor } from './helpers.js';

// Hostile input, table by table: options a caller may pass, and state someone else planted
// under a group's keys. Every row must end in a typed error or an advisory that names the
// problem, with never two members active at once and nothing left running.

const { server, observer } = fileServer();

const A = FAST.activationInterval;
const H = FAST.heartbeatInterval;
/** How much later than due a loaded 2-core machine may get something done. */
const LATE_MS = 1000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The library's connections to the test server (lease, events, admin). */
async function understudyConnections(): Promise<number> {
  const list = String(await observer().call('CLIENT', 'LIST'));
  return list.split('\n').filter((line) => /\bname=understudy-/.test(line)).length;
}

async function expectNoConnections(): Promise<void> {
  await waitFor(async () => (await understudyConnections()) === 0, 'the library’s connections to close', 3000);
}

async function failure(call: () => unknown): Promise<unknown> {
  try {
    await call();
  } catch (error) {
    return error;
  }
  throw new Error('the call succeeded; expected it to fail');
}

// ---- options -------------------------------------------------------------------------------

interface OptionCase {
  name: string;
  call: (url: string) => unknown;
  field: string;
  rule: RegExp;
}

const base = (url: string) => ({ ...FAST, redis: url, group: uniqueGroup('hostile-opt'), weight: 1 });
const joinWith = (options: Record<string, unknown>) => (url: string) =>
  joinGroup({ ...base(url), ...options } as Parameters<typeof joinGroup>[0]);
const monitorWith = (options: Record<string, unknown>) => (url: string) =>
  monitorGroup({ redis: url, group: uniqueGroup('hostile-mon'), ...options } as Parameters<typeof monitorGroup>[0]);

const optionCases: OptionCase[] = [
  {
    name: 'a heartbeat interval of NaN',
    call: joinWith({ heartbeatInterval: Number.NaN }),
    field: 'heartbeatInterval',
    rule: /whole number/,
  },
  {
    name: 'an infinite activation interval',
    call: joinWith({ activationInterval: Number.POSITIVE_INFINITY }),
    field: 'activationInterval',
    rule: /whole number/,
  },
  {
    name: 'an activation interval of 10^12 ms',
    call: joinWith({ activationInterval: 1e12 }),
    field: 'activationInterval',
    rule: /at most 86400000 ms/,
  },
  {
    name: 'a preparation interval of 2^53 - 1 ms',
    call: joinWith({ preparationInterval: Number.MAX_SAFE_INTEGER }),
    field: 'preparationInterval',
    rule: /at most 86400000 ms/,
  },
  {
    name: 'an activation interval equal to the heartbeat',
    call: joinWith({ heartbeatInterval: 400, activationInterval: 400 }),
    field: 'activationInterval',
    rule: /must be greater than heartbeatInterval \(400 ms\)/,
  },
  { name: 'a weight of NaN', call: joinWith({ weight: Number.NaN }), field: 'weight', rule: /integer from 1 to 65535/ },
  {
    name: 'an infinite weight',
    call: joinWith({ weight: Number.POSITIVE_INFINITY }),
    field: 'weight',
    rule: /integer from 1 to 65535/,
  },
  {
    name: 'an active goal of 10001',
    call: joinWith({ activeGoal: 10_001 }),
    field: 'activeGoal',
    rule: /from 1 to 10000/,
  },
  {
    name: 'an active goal given as a string',
    call: joinWith({ activeGoal: '2' }),
    field: 'activeGoal',
    rule: /integer/,
  },
  {
    name: 'a member id with a newline',
    call: joinWith({ memberId: 'a\nb' }),
    field: 'memberId',
    rule: /1-200 characters/,
  },
  {
    name: 'a member id of 201 characters',
    call: joinWith({ memberId: 'm'.repeat(201) }),
    field: 'memberId',
    rule: /1-200 characters/,
  },
  {
    name: 'a member id with a NUL byte',
    call: joinWith({ memberId: 'a\0b' }),
    field: 'memberId',
    rule: /1-200 characters/,
  },
  {
    name: 'a group name with a newline',
    call: joinWith({ group: 'orders\nx' }),
    field: 'group',
    rule: /character "\\n" is not allowed/,
  },
  {
    name: 'a group name with a tab',
    call: joinWith({ group: 'orders\tx' }),
    field: 'group',
    rule: /character "\\t" is not allowed/,
  },
  {
    name: 'a group name with a NUL byte',
    call: joinWith({ group: 'orders\0' }),
    field: 'group',
    rule: /character "\\u0000" is not allowed/,
  },
  { name: 'a group name that is a number', call: joinWith({ group: 5 }), field: 'group', rule: /1-128 characters/ },
  {
    name: 'a group name with a non-ASCII letter',
    call: joinWith({ group: 'grüße' }),
    field: 'group',
    rule: /character "ü" is not allowed/,
  },
  {
    name: 'a group name with a glob star',
    call: joinWith({ group: 'orders*' }),
    field: 'group',
    rule: /character "\*" is not allowed/,
  },
  {
    name: 'a group name that is a hash tag',
    call: joinWith({ group: '{orders}' }),
    field: 'group',
    rule: /character "\{" is not allowed/,
  },
  { name: 'a key prefix with a brace', call: joinWith({ prefix: 'app{x' }), field: 'prefix', rule: /1-64 characters/ },
  { name: 'a clock drift of NaN', call: joinWith({ clockDrift: Number.NaN }), field: 'clockDrift', rule: /fraction/ },
  { name: 'a negative clock drift', call: joinWith({ clockDrift: -0.1 }), field: 'clockDrift', rule: /fraction/ },
  {
    name: "durability 'sync'",
    call: joinWith({ durability: 'sync' }),
    field: 'durability',
    rule: /'async' or 'replicated'/,
  },
  {
    name: 'an activate handler that is not a function',
    call: joinWith({ onActivate: 'start' }),
    field: 'onActivate',
    rule: /must be a function/,
  },
  {
    name: 'an http:// URL',
    call: joinWith({ redis: 'http://127.0.0.1:6379' }),
    field: 'redis',
    rule: /redis:\/\/host:port/,
  },
  {
    name: 'a host:port without a scheme',
    call: joinWith({ redis: 'localhost:6379' }),
    field: 'redis',
    rule: /redis:\/\/host:port/,
  },
  { name: 'a Redis given as a number', call: joinWith({ redis: 6379 }), field: 'redis', rule: /ioredis client/ },
  // Finding F20: an array of URLs used to join localhost:6379; an array is quorum mode now (DESIGN §9), checked up front.
  {
    name: 'a Redis given as an array of two URLs (quorum mode needs an odd number)',
    call: joinWith({ redis: ['redis://127.0.0.1:1', 'redis://127.0.0.1:2'] }),
    field: 'redis',
    rule: /odd number .* from 3 to 7/,
  },
  {
    name: 'a Redis given as an empty array',
    call: joinWith({ redis: [] }),
    field: 'redis',
    rule: /odd number .* from 3 to 7/,
  },
  {
    name: 'a monitor of a Redis given as a one-element array',
    call: monitorWith({ redis: ['redis://127.0.0.1:1'] }),
    field: 'redis',
    rule: /one deployment is not quorum mode/,
  },
  {
    name: 'a monitor of four deployments (quorum mode needs an odd number)',
    call: monitorWith({
      redis: ['redis://127.0.0.1:1', 'redis://127.0.0.1:2', 'redis://127.0.0.1:3', 'redis://127.0.0.1:4'],
    }),
    field: 'redis',
    rule: /odd number .* from 3 to 7/,
  },
  {
    name: 'a quorum monitor with a history replay (each deployment keeps its own log)',
    call: monitorWith({ redis: ['redis://127.0.0.1:1', 'redis://127.0.0.1:2', 'redis://127.0.0.1:3'], history: 5 }),
    field: 'history',
    rule: /not available in quorum mode/,
  },
  { name: 'a Redis given as true', call: joinWith({ redis: true }), field: 'redis', rule: /ioredis client/ },
  { name: 'a Redis given as a function', call: joinWith({ redis: () => 1 }), field: 'redis', rule: /ioredis client/ },
  {
    name: 'a Redis given as a Map',
    call: joinWith({ redis: new Map() }),
    field: 'redis',
    rule: /plain options object/,
  },
  {
    name: 'a Redis given as a Date',
    call: joinWith({ redis: new Date() }),
    field: 'redis',
    rule: /plain options object/,
  },
  {
    name: 'a Redis given as a URL object',
    call: joinWith({ redis: new URL('redis://127.0.0.1:1') }),
    field: 'redis',
    rule: /plain options object/,
  },
  {
    name: 'a monitor lost interval of 0',
    call: monitorWith({ lostInterval: 0 }),
    field: 'lostInterval',
    rule: /from 1 to 86400000/,
  },
  {
    name: 'a monitor lost interval of 10^15 ms',
    call: monitorWith({ lostInterval: 1e15 }),
    field: 'lostInterval',
    rule: /from 1 to 86400000/,
  },
  { name: 'a monitor history of -1', call: monitorWith({ history: -1 }), field: 'history', rule: /0 or more/ },
  {
    name: 'a monitor of an empty group name',
    call: monitorWith({ group: '' }),
    field: 'group',
    rule: /1-128 characters/,
  },
  {
    name: 'an operator goal of 0',
    call: (url) => setActiveGoal({ redis: url, group: 'g', activeGoal: 0 }),
    field: 'activeGoal',
    rule: /from 1 to 10000/,
  },
  {
    name: 'an operator goal of 2.5',
    call: (url) => setActiveGoal({ redis: url, group: 'g', activeGoal: 2.5 }),
    field: 'activeGoal',
    rule: /integer/,
  },
  {
    name: 'a read through an ftp:// URL',
    call: () => describeGroup({ redis: 'ftp://127.0.0.1', group: 'g' }),
    field: 'redis',
    rule: /redis:\/\/host:port/,
  },
  {
    name: 'ACL rules for a group name with a bracket',
    call: () => aclRules({ group: 'a]' }),
    field: 'group',
    rule: /character "\]"/,
  },
];

describe('hostile options', () => {
  it.each(optionCases.map((c) => [c.name, c] as const))(
    'refuses %s with a ConfigError naming the field and the rule, opening nothing',
    async (_name, { call, field, rule }) => {
      const timers = trackLibraryTimers();
      const error = await failure(() => call(server().url));
      expect(error).toBeInstanceOf(ConfigError);
      expect(error).toMatchObject({ code: 'CONFIG', field });
      expect((error as Error).message).toContain(field);
      expect((error as Error).message).toMatch(rule);
      expect(await understudyConnections()).toBe(0);
      await timers.expectAllEnded();
    },
  );
});

// ---- state planted under a group's keys ------------------------------------------------------

interface CorruptCase {
  name: string;
  /** Writes the bad value (the group has members 'first', active, and 'second'). */
  plant: (r: Redis, k: GroupKeys) => Promise<unknown>;
  /** The key the error must name. */
  key: (k: GroupKeys) => string;
  /** What the error must say about it. */
  problem: RegExp;
  /**
   * Whose renewals read the bad value and are refused (advisory CORRUPT_STATE; the active steps
   * down at its lease deadline): every member's, only the holder's of a bad record (the group
   * heals when its lease lapses, since a lapsed member's record is dropped unread), or none
   * (only the scripts that rank the group read it, a join among them). 'all' is both members
   * here: the holder and the next in line; the steady renewal of a member that holds no slot and
   * is not next in line reads the config's seal (renew.lua), which a value written by hand
   * leaves as it was, and that member finds the value with its next full renewal.
   */
  refused: 'all' | 'holder' | 'none';
  /** What a monitor's read says: the same error, or nothing wrong (it does not read that value). */
  monitor: 'refused' | 'reads' | 'history refused';
}

/** Replaces a key with a value of another type, atomically (a renewal in between would write it back). */
const replaceWith = (r: Redis, key: string, write: (m: ChainableCommander) => ChainableCommander) =>
  write(r.multi().del(key)).exec();

const corruptCases: CorruptCase[] = [
  {
    name: 'the config is a string',
    plant: (r, k) => replaceWith(r, k.config, (m) => m.set(k.config, 'activeGoal=1')),
    key: (k) => k.config,
    problem: /is not a hash \(WRONGTYPE\)/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the config is a list',
    plant: (r, k) => replaceWith(r, k.config, (m) => m.rpush(k.config, 'activeGoal', '1')),
    key: (k) => k.config,
    problem: /is not a hash \(WRONGTYPE\)/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the active goal is a word',
    plant: (r, k) => r.hset(k.config, 'activeGoal', 'many'),
    key: (k) => k.config,
    problem: /field activeGoal is not a whole number from 0 to 10000/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the active goal is negative',
    plant: (r, k) => r.hset(k.config, 'activeGoal', '-3'),
    key: (k) => k.config,
    problem: /field activeGoal is not a whole number/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the activation interval is 1e400',
    plant: (r, k) => r.hset(k.config, 'activationInterval', '1e400'),
    key: (k) => k.config,
    problem: /field activationInterval is not a whole number from 0 to 86400000/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the epoch is 1e30, beyond 2^53',
    plant: (r, k) => r.hset(k.config, 'epoch', '1e30'),
    key: (k) => k.config,
    problem: /field epoch is not a whole number from 0 to 9007199254740991/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the epoch is a word',
    plant: (r, k) => r.hset(k.config, 'epoch', 'latest'),
    key: (k) => k.config,
    problem: /field epoch is not a whole number/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the version is not a number',
    plant: (r, k) => r.hset(k.config, 'version', 'v2'),
    key: (k) => k.config,
    problem: /field version is not a whole number/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the join sequence is not a number',
    plant: (r, k) => r.hset(k.config, 'seq', 'x'),
    key: (k) => k.config,
    problem: /field seq is not a whole number/,
    refused: 'none',
    monitor: 'reads',
  },
  {
    name: 'the quarantine ends in a thousand years',
    plant: (r, k) => r.hset(k.config, 'quarantineUntil', String(Date.now() + 1000 * 365 * 86_400_000)),
    key: (k) => k.config,
    problem: /field quarantineUntil is not a whole number from 0 to/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the next in line is not a member id',
    plant: (r, k) => r.hset(k.config, 'next', 'second\nfirst'),
    key: (k) => k.config,
    problem: /field next is not a member id/,
    refused: 'all',
    monitor: 'reads',
  },
  {
    name: 'the members hash is a sorted set',
    plant: (r, k) => replaceWith(r, k.members, (m) => m.zadd(k.members, 1, 'first')),
    key: (k) => k.members,
    problem: /is not a hash \(WRONGTYPE\)/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'the active member’s record is not JSON',
    plant: (r, k) => r.hset(k.members, 'first', '{not json'),
    key: (k) => k.members,
    problem: /field first is not a JSON object/,
    refused: 'holder',
    monitor: 'refused',
  },
  {
    name: 'the active member’s weight is a word',
    plant: (r, k) => r.hset(k.members, 'first', '{"w":"heavy","q":1}'),
    key: (k) => k.members,
    problem: /field first has no valid weight/,
    refused: 'holder',
    monitor: 'refused',
  },
  {
    name: 'the active member’s record is a JSON array',
    plant: (r, k) => r.hset(k.members, 'first', '[20,1]'),
    key: (k) => k.members,
    problem: /field first (has no valid weight|is not a JSON object)/,
    refused: 'holder',
    monitor: 'refused',
  },
  {
    name: 'the leases are a string',
    plant: (r, k) => replaceWith(r, k.leases, (m) => m.set(k.leases, 'first')),
    key: (k) => k.leases,
    problem: /is not a sorted set \(WRONGTYPE\)/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'a lease that ends in a year',
    // A record and a rank of its own: keys that disagree are lost state and repaired (lost-state.test.ts).
    plant: (r, k) =>
      r
        .multi()
        .hset(k.members, 'phantom', '{"w":1,"q":99}')
        .zadd(k.rank, 1, 'phantom')
        .zadd(k.leases, Date.now() + 365 * 86_400_000, 'phantom')
        .exec(),
    key: (k) => k.leases,
    problem: /holds a lease of phantom ending more than a day from now/,
    refused: 'none',
    monitor: 'reads',
  },
  {
    name: 'the ranking is a hash',
    plant: (r, k) => replaceWith(r, k.rank, (m) => m.hset(k.rank, 'first', '1')),
    key: (k) => k.rank,
    problem: /is not a sorted set \(WRONGTYPE\)/,
    refused: 'none',
    monitor: 'refused',
  },
  {
    name: 'the slots are a list',
    plant: (r, k) => replaceWith(r, k.slots, (m) => m.rpush(k.slots, 'first')),
    key: (k) => k.slots,
    problem: /is not a hash \(WRONGTYPE\)/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'a slot is garbage',
    plant: (r, k) => r.hset(k.slots, '0', 'garbage'),
    key: (k) => k.slots,
    problem: /field 0 is not a JSON object/,
    refused: 'all',
    monitor: 'refused',
  },
  {
    name: 'a slot in an unknown state',
    plant: async (r, k) => {
      const slot = JSON.parse((await r.hget(k.slots, '0')) ?? '{}') as Record<string, string>;
      await r.hset(k.slots, '0', JSON.stringify({ ...slot, s: 'sleeping' }));
    },
    key: (k) => k.slots,
    problem: /field 0 is not a slot/,
    refused: 'all',
    monitor: 'reads',
  },
  {
    name: 'the transition log is a hash',
    plant: (r, k) => replaceWith(r, k.log, (m) => m.hset(k.log, 'type', 'join')),
    key: (k) => k.log,
    problem: /is not a stream \(WRONGTYPE\)/,
    refused: 'none',
    monitor: 'history refused',
  },
];

describe('state someone else wrote under a group’s keys', () => {
  it.each(corruptCases.map((c) => [c.name, c] as const))(
    '%s: typed error or advisory naming the key, never two active, nothing left running',
    async (_name, c) => {
      const timers = trackLibraryTimers();
      const group = uniqueGroup('hostile');
      const keys = groupKeys(group);
      const url = server().url;
      const timeline = new Timeline();
      const advisories = new Map<string, Advisory[]>();
      const members: Member[] = [];
      const start = async (memberId: string, weight: number) => {
        const member = await joinGroup({ ...FAST, redis: url, group, memberId, weight });
        members.push(member);
        timeline.watch(member);
        advisories.set(memberId, []);
        member.on('advisory', (a) => advisories.get(memberId)?.push(a));
        return member;
      };
      try {
        const first = await start('first', 20);
        const second = await start('second', 10);
        await waitFor(() => first.isActive(), 'first active', A * 2 + LATE_MS);

        await c.plant(observer(), keys);
        const named = (message: string) =>
          message.includes(c.key(keys)) && c.problem.test(message) && message.includes(group);

        // A newcomer is refused with the error naming the key. (Its weight ranks it last: the
        // record its refused join leaves behind lapses with its lease and takes nothing over.)
        const refused = await failure(() =>
          joinGroup({ ...FAST, redis: `${url}/0`, group, memberId: 'newcomer', weight: 5 }),
        );
        expect(refused).toBeInstanceOf(CorruptStateError);
        expect(refused).toMatchObject({ code: 'CORRUPT_STATE', group, key: c.key(keys) });
        expect(named((refused as Error).message), (refused as Error).message).toBe(true);

        // What a monitor reads.
        const described = await describeGroup({ redis: url, group }).then(
          () => undefined,
          (e: unknown) => e,
        );
        const history = await readHistory({ redis: url, group }).then(
          () => undefined,
          (e: unknown) => e,
        );
        const monitorError =
          c.monitor === 'refused' ? described : c.monitor === 'history refused' ? history : undefined;
        if (c.monitor === 'reads') {
          expect(described).toBeUndefined();
        } else {
          expect(monitorError).toBeInstanceOf(CorruptStateError);
          expect(named((monitorError as Error).message), (monitorError as Error).message).toBe(true);
        }

        if (c.refused === 'none') {
          await sleep(H * 4);
        } else {
          for (const member of c.refused === 'all' ? [first, second] : [first]) {
            const advisory = await waitFor(
              () => advisories.get(member.id)?.find((a) => a.code === 'CORRUPT_STATE'),
              `${member.id} to report CORRUPT_STATE`,
              H * 4 + LATE_MS,
            );
            expect(named(advisory.message), advisory.message).toBe(true);
          }
          await waitFor(() => first.state === 'standby', 'first to step down at its lease deadline', A + LATE_MS);
        }
        if (c.refused === 'all') {
          await sleep(A);
          expect(second.isActive()).toBe(false);
          expect(timeline.of('second', 'activate')).toEqual([]);
          // Repaired (here: the group's keys deleted), the members carry on without being restarted.
          await observer().del(...keys.scriptKeys);
          await waitFor(() => first.isActive(), 'first active again after the repair', A * 3 + LATE_MS);
        }
        if (c.refused === 'holder') {
          await waitFor(
            () => first.isActive() || second.isActive(),
            'the group to heal once first’s lease lapsed',
            A * 3 + LATE_MS,
          );
        }
        expect(timeline.maxConcurrentActive()).toBeLessThanOrEqual(1);
      } finally {
        await Promise.all(members.map((m) => m.leave()));
        await observer().del(...keys.scriptKeys, keys.heartbeat('first'), keys.heartbeat('second'));
      }
      for (const member of members) expect(member.state).toBe('left');
      await expectNoConnections();
      await timers.expectAllEnded();
    },
  );

  it('a heartbeat key of the wrong type is replaced by the next renewal: it is the member’s own, for operators only', async () => {
    const group = uniqueGroup('hostile-hb');
    const keys = groupKeys(group);
    const member = await joinGroup({ ...FAST, redis: server().url, group, memberId: 'first', weight: 10 });
    try {
      await waitFor(() => member.isActive(), 'first active', A * 2 + LATE_MS);
      const hb = keys.heartbeat('first');
      await observer().del(hb);
      await observer().rpush(hb, 'not', 'a', 'heartbeat');
      await waitFor(
        async () => (await observer().type(hb)) === 'string',
        'the heartbeat key to be a string again',
        H * 4 + LATE_MS,
      );
      expect(await observer().get(hb)).toBe('active');
      expect(member.isActive()).toBe(true);
    } finally {
      await member.leave();
      await observer().del(...keys.scriptKeys);
    }
    await expectNoConnections();
  });

  it('a monitor of a group with corrupt state reports the error and keeps watching; repaired, it follows again', async () => {
    const group = uniqueGroup('hostile-mon');
    const keys = groupKeys(group);
    const member = await joinGroup({ ...FAST, redis: server().url, group, memberId: 'watched', weight: 10 });
    const monitor = await monitorGroup({ redis: server().url, group });
    const errors: Error[] = [];
    monitor.on('error', (e) => errors.push(e));
    try {
      await waitFor(
        () => monitor.snapshot().activeCount === 1,
        'the monitor to see the member active',
        A * 2 + LATE_MS,
      );
      await observer().hset(keys.members, 'watched', '{not json');
      await waitFor(() => errors.length > 0, 'the monitor to report an error', A + LATE_MS);
      expect(errors[0]).toBeInstanceOf(CorruptStateError);
      expect(errors[0]?.message).toContain(keys.members);
      await observer().del(...keys.scriptKeys);
      await waitFor(
        () => monitor.snapshot().activeCount === 1,
        'the monitor to follow the repaired group',
        A * 3 + LATE_MS,
      );
    } finally {
      await monitor.close();
      await member.leave();
      await observer().del(...keys.scriptKeys);
    }
    await expectNoConnections();
  });
});
