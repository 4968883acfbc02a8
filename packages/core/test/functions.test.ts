// The scripts as a Redis function library (script-call.ts): loaded once per server, called with
// FCALL / FCALL_RO, loaded again where a server lost it, and the scripts (EVALSHA) wherever
// functions are refused. Real redis-server processes; the counts come from INFO commandstats.
import {
  aclRules,
  enqueue,
  type Member,
  type Monitor,
  monitorGroup,
  queueAclRules,
  queueKeys,
  type Task,
} from '@understudy/core';
import { type RedisCluster, type RedisServer, startCluster, startRedis } from '@understudy/testkit';
import { Cluster, Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { luaRaw } from '../src/lua.js';
import { libraryOf } from '../src/script-call.js';
import { SCRIPT_SPECS, type ScriptName } from '../src/script-specs.js';
import { FAST, memberFactory, uniqueGroup, waitFor, workerFactory } from './helpers.js';

const A = FAST.activationInterval;
const H = FAST.heartbeatInterval;
const LATE_MS = 1000;
const PASSWORD = 'functions-test-password';
const GROUP_LIBRARY = libraryOf('renew');

/** Calls of each command since the last CONFIG RESETSTAT, by `cmdstat_` name. */
async function commandCalls(redis: Redis): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  for (const match of (await redis.info('commandstats')).matchAll(/^cmdstat_(\S+?):calls=(\d+)/gm)) {
    calls.set(match[1] as string, Number(match[2]));
  }
  return calls;
}

/**
 * Counts the renewals a member reports as done from now on. A renewal in flight now may have run
 * on the server already: a test that resets the server's command counts first waits for one more
 * renewal than the calls it then expects.
 */
function renewals(member: Member): () => number {
  let count = 0;
  member.on('renewal', (r) => {
    if (r.outcome === 'ok') count += 1;
  });
  return () => count;
}

describe('the libraries', () => {
  it('hold every script’s own code and every line of the code it includes, as written', () => {
    const files = new Set<string>();
    for (const name of Object.keys(SCRIPT_SPECS) as ScriptName[]) {
      const library = libraryOf(name);
      const raw = luaRaw(`${name}.lua`).replace(/^#!lua.*\n/, '');
      const include = /^--@include (\S+)$/m.exec(raw);
      const body = include ? raw.slice(include.index + include[0].length) : raw;
      expect(library.source, name).toContain(body.trim());
      // A script's code before its include (a fast path) runs first, as written.
      if (include) expect(library.source, name).toContain(raw.slice(0, include.index).trim());
      if (include) files.add(`${name.startsWith('queue/') ? 'queue/' : ''}:${include[1]}`);
    }
    for (const entry of files) {
      const [kind, file] = entry.split(':') as [string, string];
      const lines = new Set(libraryOf(kind === 'queue/' ? 'queue/renew' : 'renew').source.split('\n'));
      const pending = [file];
      while (pending.length > 0) {
        const next = pending.pop() as string;
        for (const line of luaRaw(next).split('\n')) {
          const included = /^--@include (\S+)$/.exec(line);
          if (included) pending.push(included[1] as string);
          if (line.trim() === '' || line.trimStart().startsWith('--')) continue;
          // A per-call value's declaration runs as an assignment to the block's local (a
          // statement's trailing comment stays behind).
          const variants = [line, line.replace(/ +-- [^']*$/, '')].flatMap((v) => [v, v.replace(/^local /, '')]);
          expect(
            variants.some((v) => lines.has(v)),
            `${next}: ${line}`,
          ).toBe(true);
        }
      }
    }
  });

  it('define a constant once, and run a value that code assigns to, or that is not a literal, per call', () => {
    const source = libraryOf('queue/renew').source;
    const perCall = /local function __per_call\(\)\n([\s\S]*?)\nend/.exec(source)?.[1] ?? '';
    expect(perCall).not.toBe('');
    // Literals nothing assigns to: defined once, outside the per-call statements.
    for (const constant of ['TWO33 = 8589934592', "REAP_BATCH = '64'", 'MAX_INTERVAL = 86400000']) {
      expect(source).toContain(`local ${constant}`);
      expect(perCall).not.toContain(constant);
    }
    // A table is made afresh per call; SPARE is assigned by the code (and starts every call as nil).
    expect(perCall).toContain('WORKERS = {}');
    expect(perCall).toContain('SPARE = nil');
  });

  it('are named by the hash of their code: understudy_<8 hex digits>, the group’s and the queue’s apart', () => {
    const group = libraryOf('renew');
    const queue = libraryOf('queue/renew');
    expect(group.name).toMatch(/^understudy_[0-9a-f]{8}$/);
    expect(queue.name).toMatch(/^understudy_[0-9a-f]{8}$/);
    expect(group.name).not.toBe(queue.name);
    expect(group.source.split('\n')[0]).toBe(`#!lua name=${group.name}`);
    expect(group.source).toContain(`function_name = '${group.name}_renew'`);
    expect(group.source).toContain(`function_name = '${group.name}_observe', flags = { 'no-writes' }`);
    expect(queue.source).toContain(`function_name = '${queue.name}_queue_observe', flags = { 'no-writes' }`);
  });
});

describe('a member on a server with functions', () => {
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis();
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  const join = memberFactory(() => server);

  it('renews with FCALL of the loaded library and sends no EVALSHA', async () => {
    const group = uniqueGroup('fn-stats');
    const member = await join({ group, memberId: 'm', weight: 1 });
    await waitFor(() => member.isActive(), 'm active', 2 * A + LATE_MS);
    await admin.config('RESETSTAT');
    const done = renewals(member);
    await waitFor(() => done() >= 6, 'six renewals', 10 * H + LATE_MS);
    const calls = await commandCalls(admin);
    expect(calls.get('fcall')).toBeGreaterThanOrEqual(5);
    expect(calls.get('evalsha') ?? 0).toBe(0);
    expect(calls.get('eval') ?? 0).toBe(0);
    const libraries = (await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', GROUP_LIBRARY.name)) as unknown[];
    expect(libraries).toHaveLength(1);
  });

  it('keeps every lease through FUNCTION FLUSH: the next call loads the library again', async () => {
    const group = uniqueGroup('fn-flush');
    const active = await join({ group, memberId: 'a', weight: 10 });
    const standby = await join({ group, memberId: 'b', weight: 1 });
    await waitFor(() => active.isActive(), 'a active', 2 * A + LATE_MS);
    const deactivations: string[] = [];
    active.on('deactivate', (d) => deactivations.push(d.reason));
    const advisories: string[] = [];
    for (const m of [active, standby]) m.on('advisory', (a) => advisories.push(a.code));
    await admin.config('RESETSTAT');
    const done = [renewals(active), renewals(standby)];
    for (let flush = 0; flush < 5; flush++) {
      await admin.call('FUNCTION', 'FLUSH');
      const before = done.map((count) => count());
      await waitFor(() => done.every((count, i) => count() >= (before[i] as number) + 2), 'renewals after the flush');
    }
    const calls = await commandCalls(admin);
    expect(calls.get('function|load')).toBeGreaterThanOrEqual(5);
    expect(calls.get('evalsha') ?? 0).toBe(0);
    expect(active.isActive()).toBe(true);
    expect(deactivations).toEqual([]);
    expect(advisories).toEqual([]);
  });

  it('two versions of the library live side by side, each calling its own functions', async () => {
    const old = GROUP_LIBRARY.source
      .replaceAll(GROUP_LIBRARY.name, 'understudy_00000000')
      .replace("key_kinds({ 'hash'", "local _ = 'an older version'\nkey_kinds({ 'hash'");
    await admin.call('FUNCTION', 'LOAD', old);
    try {
      const group = uniqueGroup('fn-versions');
      const member = await join({ group, memberId: 'm', weight: 1 });
      await waitFor(() => member.isActive(), 'm active', 2 * A + LATE_MS);
      const names = ((await admin.call('FUNCTION', 'LIST', 'LIBRARYNAME', 'understudy_*')) as unknown[][]).map(
        (library) => library[1],
      );
      expect(names).toEqual(expect.arrayContaining(['understudy_00000000', GROUP_LIBRARY.name]));
    } finally {
      await admin.call('FUNCTION', 'DELETE', 'understudy_00000000');
    }
  });

  it('keeps each call’s keys and reads its own: members of two groups renew in turn', async () => {
    const groups = [uniqueGroup('fn-a'), uniqueGroup('fn-b')];
    const members = await Promise.all(groups.map((group, i) => join({ group, memberId: `m${i}`, weight: 1 })));
    await waitFor(() => members.every((m) => m.isActive()), 'both active', 2 * A + LATE_MS);
    for (const [i, group] of groups.entries()) {
      expect(await admin.hkeys(`understudy:{${group}}:members`)).toEqual([`m${i}`]);
    }
  });
});

describe('a server without functions (FUNCTION and FCALL unknown, as before Redis 7)', () => {
  let server: RedisServer;
  let admin: Redis;
  beforeAll(async () => {
    server = await startRedis({ config: { 'rename-command': ['FUNCTION', '""'] } });
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  const join = memberFactory(() => server);

  it('runs the scripts with EVALSHA, and a monitor with EVALSHA_RO', async () => {
    const group = uniqueGroup('fn-none');
    const member = await join({ group, memberId: 'm', weight: 1 });
    await waitFor(() => member.isActive(), 'm active', 2 * A + LATE_MS);
    await admin.config('RESETSTAT');
    const done = renewals(member);
    await waitFor(() => done() >= 4, 'four renewals', 10 * H + LATE_MS);
    const monitor = await monitorGroup({ redis: server.url, group });
    try {
      expect(monitor.snapshot().members.map((m) => m.id)).toEqual(['m']);
    } finally {
      await monitor.close();
    }
    const calls = await commandCalls(admin);
    expect(calls.get('evalsha')).toBeGreaterThanOrEqual(3);
    expect(calls.get('evalsha_ro')).toBeGreaterThanOrEqual(1);
    expect(calls.get('fcall') ?? 0).toBe(0);
    expect(calls.get('fcall_ro') ?? 0).toBe(0);
  });
});

describe('under ACL', () => {
  let server: RedisServer;
  let admin: Redis;
  const group = uniqueGroup('fn-acl');
  const rules = aclRules({ group });
  const loader = aclRules({ group, memberUser: 'fn-loader', monitorUser: 'fn-loader-monitor' }).member;
  beforeAll(async () => {
    server = await startRedis({
      acl: [
        'user default on nopass ~* &* +@all',
        ...[rules.member, rules.monitor].map((u) => `user ${u.user} ${u.rules.join(' ')} >${PASSWORD}`),
        `user ${loader.user} ${loader.rules.join(' ')} +function|load >${PASSWORD}`,
        `user no-functions ${rules.member.rules.join(' ')} -fcall >${PASSWORD}`,
      ],
    });
    admin = new Redis(server.url);
  });
  afterAll(async () => {
    admin?.disconnect();
    await server?.stop();
  });
  const urlOf = (user: string) => `redis://${user}:${PASSWORD}@127.0.0.1:${server.port}`;
  const join = memberFactory(() => server);
  const monitors: Monitor[] = [];
  afterEach(async () => {
    await Promise.allSettled(monitors.splice(0).map((m) => m.close()));
  });
  /** As an operator would: the library loaded, or none (the previous test's clean-up may have loaded it). */
  const operatorLoads = (loaded: boolean) =>
    loaded ? admin.call('FUNCTION', 'LOAD', 'REPLACE', GROUP_LIBRARY.source) : admin.call('FUNCTION', 'FLUSH');

  async function renewingWith(user: string, memberId: string): Promise<Map<string, number>> {
    const member = await join({ group, memberId, weight: 1, redis: urlOf(user) });
    await waitFor(() => member.isActive(), `${memberId} active`, 2 * A + LATE_MS);
    await admin.config('RESETSTAT');
    const done = renewals(member);
    await waitFor(() => done() >= 4, 'four renewals', 10 * H + LATE_MS);
    const calls = await commandCalls(admin);
    await member.leave();
    return calls;
  }

  it('a member whose user may not load the library runs the scripts while nobody loaded it', async () => {
    await operatorLoads(false);
    const calls = await renewingWith(rules.member.user, 'plain');
    expect(calls.get('evalsha')).toBeGreaterThanOrEqual(3);
    expect(calls.get('fcall') ?? 0).toBe(0);
  });

  it('a member whose user may not load it calls the library an operator loaded', async () => {
    await operatorLoads(true);
    const calls = await renewingWith(rules.member.user, 'operator-loaded');
    expect(calls.get('fcall')).toBeGreaterThanOrEqual(3);
    expect(calls.get('evalsha') ?? 0).toBe(0);
  });

  it('a member whose user may load it loads it, and calls it', async () => {
    await operatorLoads(false);
    const calls = await renewingWith(loader.user, 'loader');
    expect(calls.get('fcall')).toBeGreaterThanOrEqual(3);
    expect(calls.get('evalsha') ?? 0).toBe(0);
  });

  it('a member whose user may not call functions at all runs on the EVALSHA path', async () => {
    await operatorLoads(true);
    const calls = await renewingWith('no-functions', 'no-functions');
    expect(calls.get('evalsha')).toBeGreaterThanOrEqual(3);
    expect(calls.get('fcall') ?? 0).toBe(0);
  });

  it('a monitor under its read-only user reads with FCALL_RO once the library is loaded, else EVALSHA_RO', async () => {
    const member = await join({ group, memberId: 'watched', weight: 1, redis: urlOf(rules.member.user) });
    await waitFor(() => member.isActive(), 'watched active', 2 * A + LATE_MS);
    for (const loaded of [false, true]) {
      await operatorLoads(loaded);
      await admin.config('RESETSTAT');
      const monitor = await monitorGroup({ redis: urlOf(rules.monitor.user), group });
      monitors.push(monitor);
      expect(monitor.snapshot().members.map((m) => m.id)).toEqual(['watched']);
      const calls = await commandCalls(admin);
      expect(calls.get(loaded ? 'fcall_ro' : 'evalsha_ro')).toBeGreaterThanOrEqual(1);
      // Not loaded: one FCALL_RO found no function, and the connection reads with EVALSHA_RO since.
      expect(calls.get(loaded ? 'evalsha_ro' : 'fcall_ro') ?? 0).toBe(loaded ? 0 : 1);
      await monitor.close();
    }
  });

  it('gives workers and enqueuers FCALL, queue monitors FCALL_RO, and nobody FUNCTION LOAD', () => {
    const queue = queueAclRules({ queue: 'q' });
    for (const user of [rules.member, queue.worker, queue.enqueuer]) {
      expect(user.rules).toEqual(expect.arrayContaining(['+fcall', '+evalsha', '+eval']));
    }
    for (const user of [rules.monitor, queue.monitor]) {
      expect(user.rules).toEqual(expect.arrayContaining(['+fcall_ro', '+evalsha_ro', '+eval_ro']));
      expect(user.rules).not.toContain('+fcall');
    }
    for (const user of [rules.member, rules.monitor, queue.worker, queue.enqueuer, queue.monitor]) {
      expect(user.rules.filter((r) => r.includes('function'))).toEqual([]);
    }
  });
});

describe('on a Redis Cluster', () => {
  let cluster: RedisCluster;
  let client: Cluster;
  beforeAll(async () => {
    cluster = await startCluster({ masters: 3, replicasPerMaster: 0 });
    client = new Cluster(cluster.startupNodes);
  }, 60_000);
  afterAll(async () => {
    client?.disconnect();
    await cluster?.stop();
  });
  const join = memberFactory(() => {
    throw new Error('the members below name their Cluster client');
  });

  it('loads the library on every master, renews with FCALL by the group’s slot, and reloads where it was flushed', async () => {
    const group = uniqueGroup('fn-cluster');
    const member = await join({ group, memberId: 'm', weight: 1, redis: client });
    await waitFor(() => member.isActive(), 'm active', 2 * A + LATE_MS);
    const owner = await cluster.masterFor(`understudy:{${group}}:config`);
    const direct = new Redis(owner.port, '127.0.0.1');
    try {
      for (const node of cluster.nodes) {
        const redis = new Redis(node.port, '127.0.0.1');
        try {
          const libraries = (await redis.call('FUNCTION', 'LIST', 'LIBRARYNAME', GROUP_LIBRARY.name)) as unknown[];
          expect(libraries, `the library on the master on port ${node.port}`).toHaveLength(1);
        } finally {
          redis.disconnect();
        }
      }
      await direct.config('RESETSTAT');
      const done = renewals(member);
      await waitFor(() => done() >= 4, 'four renewals', 10 * H + LATE_MS);
      expect((await commandCalls(direct)).get('fcall')).toBeGreaterThanOrEqual(3);

      const deactivations: string[] = [];
      member.on('deactivate', (d) => deactivations.push(d.reason));
      await direct.call('FUNCTION', 'FLUSH');
      await direct.config('RESETSTAT');
      const before = done();
      await waitFor(() => done() >= before + 4, 'renewals after the flush', 10 * H + LATE_MS);
      const calls = await commandCalls(direct);
      expect(calls.get('function|load')).toBeGreaterThanOrEqual(1);
      expect(calls.get('evalsha') ?? 0).toBe(0);
      expect(member.isActive()).toBe(true);
      expect(deactivations).toEqual([]);
    } finally {
      direct.disconnect();
    }
  });

  const work = workerFactory(() => {
    throw new Error('the workers below name their Cluster client');
  });

  it('runs a queue through FCALL there too: the dispatch writes the worker’s inbox, a key it names without declaring', async () => {
    const queue = uniqueGroup('fn-cluster-q');
    const seen: Task[] = [];
    await work({ queue, workerId: 'w', redis: client, handler: (task) => void seen.push(task) });
    const owner = await cluster.masterFor(queueKeys(queue).config);
    const direct = new Redis(owner.port, '127.0.0.1');
    try {
      await direct.config('RESETSTAT');
      const ids = [await enqueue({ redis: client, queue }, 'one'), await enqueue({ redis: client, queue }, 'two')];
      await waitFor(() => seen.length === 2, 'both tasks delivered', 5000);
      expect(seen.map((t) => t.id)).toEqual(ids);
      const calls = await commandCalls(direct);
      expect(calls.get('fcall')).toBeGreaterThanOrEqual(2);
      expect(calls.get('evalsha') ?? 0).toBe(0);
      expect(await direct.call('FUNCTION', 'LIST', 'LIBRARYNAME', libraryOf('queue/renew').name)).toHaveLength(1);
    } finally {
      direct.disconnect();
    }
  });
});
