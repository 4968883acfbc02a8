// Distributed queues at their edges: a process is a worker or a member, never both (DESIGN §7),
// the ACL rules a worker, an enqueuer and a monitor need, monitorQueue, and option checks.
import { readdirSync, readFileSync } from 'node:fs';
import { join as joinPath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  ConfigError,
  CorruptStateError,
  describeQueue,
  ENQUEUER_COMMANDS,
  enqueue,
  joinGroup,
  joinQueue,
  listGroups,
  listQueues,
  monitorQueue,
  QUEUE_MONITOR_COMMANDS,
  type QueueSnapshot,
  queueAclRules,
  queueKeys,
  RoleConflictError,
  type TaskSettled,
  WORKER_COMMANDS,
} from '@understudy/core';
import { type RedisServer, startRedis } from '@understudy/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueScripts } from '../src/scripts.js';
import {
  completeAsWorker,
  FAST,
  fileServer,
  gate,
  popDelivery,
  renewAsWorker,
  Switch,
  uniqueGroup,
  waitFor,
  workerFactory,
} from './helpers.js';

const { server, observer } = fileServer();
const join = workerFactory(server);

describe('a process', () => {
  it('that joined a group cannot join a queue, and the reverse, until it left', async () => {
    const group = uniqueGroup('role-g');
    const queue = uniqueGroup('role-q');
    const member = await joinGroup({ redis: server().url, group, weight: 1, ...FAST });
    const refused = await joinQueue({ redis: server().url, queue, handler: () => undefined, ...FAST }).catch((e) => e);
    expect(refused).toBeInstanceOf(RoleConflictError);
    expect(refused).toMatchObject({
      code: 'ROLE_CONFLICT',
      requested: { role: 'queue', name: queue },
      held: { role: 'group', name: group },
    });
    expect(refused.message).toContain(`group ${group}`);
    expect(refused.message).toContain(`queue ${queue}`);
    // Several groups are fine.
    const second = await joinGroup({ redis: server().url, group: `${group}-2`, weight: 1, ...FAST });
    await member.leave();
    await second.leave();
    const worker = await join({ queue, workerId: 'w' });
    const reverse = await joinGroup({ redis: server().url, group, weight: 1, ...FAST }).catch((e) => e);
    expect(reverse).toMatchObject({ code: 'ROLE_CONFLICT', requested: { role: 'group' }, held: { role: 'queue' } });
    await join({ queue: `${queue}-2`, workerId: 'w2' }); // several queues are fine
    await worker.leave();
  });

  it('sees the role another copy of the library registered', async () => {
    const key = Symbol.for('understudy.role');
    const holder = globalThis as Record<symbol, unknown>;
    const queue = uniqueGroup('role-copy');
    holder[key] = { role: 'group', names: new Map([['held-by-the-other-copy', 1]]) };
    try {
      const refused = await joinQueue({ redis: server().url, queue, handler: () => undefined, ...FAST }).catch(
        (e) => e,
      );
      expect(refused).toMatchObject({ code: 'ROLE_CONFLICT', held: { role: 'group', name: 'held-by-the-other-copy' } });
    } finally {
      delete holder[key];
    }
  });
});

describe('monitorQueue', () => {
  it('reports depth, tasks in flight, workers and dead letters as they change', async () => {
    const queue = uniqueGroup('q-monitor');
    const monitor = await monitorQueue({ redis: server().url, queue });
    try {
      const changes: QueueSnapshot[] = [];
      monitor.on('change', (s) => changes.push(s));
      await enqueue({ redis: observer(), queue }, 'a');
      await waitFor(() => monitor.snapshot().depth === 1, 'depth 1');
      let release: () => void = () => undefined;
      const held = new Promise<void>((resolve) => {
        release = resolve;
      });
      const worker = await join({
        queue,
        workerId: 'seen',
        weight: 7,
        capacity: 2,
        maxDeliveries: 1,
        handler: async (task) => {
          if (task.data === 'a') await held;
          else throw new Error('to the dead letters');
        },
      });
      await waitFor(() => monitor.snapshot().inFlight === 1, 'one task in flight');
      expect(monitor.snapshot()).toMatchObject({ queue, depth: 0, inFlight: 1, dead: 0 });
      expect(monitor.snapshot().workers).toMatchObject([{ id: 'seen', weight: 7, capacity: 2, inFlight: 1 }]);
      const settled: TaskSettled[] = [];
      worker.on('task', (s) => settled.push(s));
      await enqueue({ redis: observer(), queue }, 'b');
      await waitFor(() => monitor.snapshot().dead === 1, 'one dead letter');
      release();
      await waitFor(
        () => settled.length === 2,
        () => `both settled: ${JSON.stringify(settled)}`,
      );
      await worker.leave();
      await waitFor(() => monitor.snapshot().workers.length === 0, 'no workers');
      expect(monitor.snapshot()).toMatchObject({ depth: 0, inFlight: 0, dead: 1 });
      expect(changes.length).toBeGreaterThanOrEqual(4);
    } finally {
      await monitor.close();
    }
  });
});

describe('a worker', () => {
  it('leaves when its signal aborts', async () => {
    const queue = uniqueGroup('q-signal');
    const controller = new AbortController();
    const worker = await join({ queue, workerId: 'signalled', signal: controller.signal });
    controller.abort();
    await waitFor(() => worker.state === 'left', 'the worker left');
    expect(await observer().hlen(queueKeys(queue).workers)).toBe(0);
  });

  it('cannot take the id of a live worker, and can once that worker lapsed', async () => {
    const queue = uniqueGroup('q-id');
    const cut = await Switch.start(server().port);
    try {
      await join({ queue, workerId: 'same', redis: cut.url });
      const refused = await join({ queue, workerId: 'same' }).catch((e) => e);
      expect(refused).toBeInstanceOf(ConfigError);
      expect(refused).toMatchObject({ field: 'workerId', value: 'same' });
      cut.to(1); // the first one can no longer renew: its lease lapses
      const again = await waitFor(
        () => join({ queue, workerId: 'same' }).catch(() => undefined),
        'the id to be free again',
        3000,
        50,
      );
      expect(again.state).toBe('working');
    } finally {
      await cut.close();
    }
  });
});

describe('a queue whose key holds what understudy never writes there', () => {
  it('refuses enqueues and reads with CorruptStateError naming the key', async () => {
    const queue = uniqueGroup('q-corrupt');
    const keys = queueKeys(queue);
    await observer().set(keys.workers, 'not a hash');
    try {
      for (const attempt of [
        enqueue({ redis: observer(), queue }, 'x'),
        describeQueue({ redis: server().url, queue }),
      ]) {
        const refused = await attempt.catch((e) => e);
        expect(refused).toBeInstanceOf(CorruptStateError);
        expect(refused).toMatchObject({ group: `queue ${queue}`, key: keys.workers });
      }
    } finally {
      await observer().del(keys.workers);
    }
  });
});

describe('a worker or delivery record whose values are not what the scripts write', () => {
  // Rewrites one value of a MessagePack record (values in a row, the version first; see
  // queue/lib.lua): ARGV 2 is its position after the version, ARGV 3 the new value as JSON.
  const REWRITE = `
    local values = { cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1])) }
    values[tonumber(ARGV[2]) + 1] = cjson.decode(ARGV[3])
    redis.call('HSET', KEYS[1], ARGV[1], cmsgpack.pack(unpack(values)))`;
  // Worker: w c t d a f q r n h p l; delivery: k n d e w l i.
  const workerCases: [string, number, unknown][] = [
    ['weight 0', 1, 0],
    ['capacity as text', 2, '1'],
    ['a fraction in flight', 6, 0.5],
    ['a negative lease end', 12, -1],
  ];
  const deliveryCases: [string, number, unknown][] = [
    ['a negative token', 1, -1],
    ['a number for its worker', 5, 7],
    ['deliveries as text', 2, '1'],
    ['an expiry that is a fraction', 4, 1.5],
    ['an inline mark of 2', 7, 2],
  ];

  it.each(workerCases)('refuses a worker record with %s, naming the key', async (_case, at, value) => {
    const keys = queueKeys(uniqueGroup('q-bad-worker'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: true });
    await c.eval(REWRITE, 1, keys.workers, 'ghost', at, JSON.stringify(value));
    const refused = await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: false }).catch((e) => e);
    expect(refused).toBeInstanceOf(CorruptStateError);
    expect(refused).toMatchObject({ key: keys.workers });
    expect(refused.message).toContain('is not a worker');
  });

  it.each(deliveryCases)('refuses a delivery record with %s, naming the key', async (_case, at, value) => {
    const keys = queueKeys(uniqueGroup('q-bad-delivery'));
    const c = observer();
    await renewAsWorker(c, keys, { workerId: 'ghost', claims: [], joining: true });
    const task = await queueScripts.enqueue(c, keys, { dataType: 's', data: 'one' });
    const delivery = await popDelivery(c, keys, 'ghost');
    await c.eval(REWRITE, 1, keys.deliveries, task, at, JSON.stringify(value));
    const refused = await completeAsWorker(c, keys, {
      workerId: 'ghost',
      taskId: task,
      token: delivery.token,
      inline: true,
    }).catch((e) => e);
    expect(refused).toBeInstanceOf(CorruptStateError);
    expect(refused).toMatchObject({ key: keys.deliveries });
    expect(refused.message).toContain('is not a delivery');
  });
});

describe('an enqueue while no worker has room (before the code of queue/lib.lua)', () => {
  it('names a key of the wrong type too', async () => {
    const queue = uniqueGroup('q-corrupt-fast');
    const keys = queueKeys(queue);
    await enqueue({ redis: observer(), queue }, 'creates the stream');
    await observer().set(keys.order, 'not a sorted set');
    try {
      const refused = await enqueue({ redis: observer(), queue }, 'x').catch((e) => e);
      expect(refused).toBeInstanceOf(CorruptStateError);
      expect(refused).toMatchObject({ group: `queue ${queue}`, key: keys.order });
    } finally {
      await observer().del(keys.order);
    }
  });
});

describe('records an earlier version wrote as JSON objects', () => {
  // What the previous version's scripts wrote: the same fields, tokens and expiries as text.
  const TO_JSON = `
    local w = { cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1])) }
    redis.call('HSET', KEYS[1], ARGV[1], cjson.encode({ w = w[2], c = w[3], t = w[4], d = w[5], a = w[6], f = w[7],
      q = w[8], r = w[9], n = w[10], h = w[11], p = w[12] }))
    local d = { cmsgpack.unpack(redis.call('HGET', KEYS[2], ARGV[2])) }
    redis.call('HSET', KEYS[2], ARGV[2], cjson.encode({ k = string.format('%d', d[2]), n = d[3], d = d[4],
      e = string.format('%d', d[5]), w = d[6], l = d[7] }))
    return { string.byte(redis.call('HGET', KEYS[1], ARGV[1]), 1), string.byte(redis.call('HGET', KEYS[2], ARGV[2]), 1) }`;

  it('are read (by the scripts and the monitor), and the worker record is written back as MessagePack', async () => {
    const queue = uniqueGroup('q-json');
    const keys = queueKeys(queue);
    const release = gate();
    const tokens: number[] = [];
    const settled: TaskSettled[] = [];
    const worker = await join({
      queue,
      workerId: 'legacy',
      handler: async (_task, { token }) => {
        tokens.push(token);
        if (tokens.length === 1) await release.promise;
      },
    });
    worker.on('task', (s) => settled.push(s));
    const first = await enqueue({ redis: observer(), queue }, 1);
    await waitFor(() => tokens.length === 1, 'the first task started');
    // Both records now as the earlier version wrote them ('{' is byte 123).
    expect(await observer().eval(TO_JSON, 2, keys.workers, keys.deliveries, 'legacy', first)).toEqual([123, 123]);
    const read = await describeQueue({ redis: server().url, queue });
    expect(read.workers).toMatchObject([{ id: 'legacy', inFlight: 1, capacity: 1 }]);
    expect(read.tasks).toMatchObject([{ id: first, worker: 'legacy', token: tokens[0], deliveries: 1 }]);
    await sleep(3 * FAST.heartbeatInterval); // renewals read the JSON worker record (its nonce too)
    expect(worker.state).toBe('working');
    release.open();
    // The completion's token is checked against the JSON delivery record: accepted.
    await waitFor(() => settled.length === 1, 'the first task settled');
    expect(settled[0]).toMatchObject({ id: first, outcome: 'completed' });
    expect((await observer().hgetBuffer(keys.workers, 'legacy'))?.[0]).toBe(2);
    await enqueue({ redis: observer(), queue }, 2);
    await waitFor(() => settled.length === 2, 'the second task settled');
    expect(settled[1]).toMatchObject({ outcome: 'completed' });
  });
});

describe('listQueues and describeQueue', () => {
  it('list the queues apart from the groups, and read one', async () => {
    const queue = uniqueGroup('q-listed');
    const group = uniqueGroup('g-listed');
    await enqueue({ redis: observer(), queue }, 'waits');
    const member = await joinGroup({ redis: server().url, group, weight: 1, ...FAST });
    try {
      expect(await listQueues({ redis: server().url })).toContain(queue);
      const groups = await listGroups({ redis: server().url });
      expect(groups).toContain(group);
      expect(groups.some((g) => g.includes(queue))).toBe(false);
      expect(await describeQueue({ redis: server().url, queue })).toMatchObject({ queue, depth: 1, inFlight: 0 });
    } finally {
      await member.leave();
    }
  });
});

describe('options', () => {
  it('are checked at join, naming the bad input', async () => {
    const base = { redis: server().url, queue: 'q-options', handler: () => undefined };
    const cases: [Record<string, unknown>, string][] = [
      [{ queue: 'a b' }, 'queue'],
      [{ queue: '' }, 'queue'],
      [{ capacity: 0 }, 'capacity'],
      [{ capacity: 1.5 }, 'capacity'],
      [{ weight: 0 }, 'weight'],
      [{ completeTime: 0 }, 'completeTime'],
      [{ maxDeliveries: 0 }, 'maxDeliveries'],
      [{ heartbeatInterval: 500, activationInterval: 400 }, 'activationInterval'],
      [{ handler: 'not a function' }, 'handler'],
      [{ workerId: 'has space' }, 'workerId'],
    ];
    for (const [bad, field] of cases) {
      const error = await joinQueue({ ...base, ...bad } as Parameters<typeof joinQueue>[0]).catch((e) => e);
      expect(error, field).toBeInstanceOf(ConfigError);
      expect(error.field).toBe(field);
    }
    await expect(enqueue({ redis: server().url, queue: 'q-options' }, undefined)).rejects.toMatchObject({
      field: 'data',
    });
  });
});

describe('the ACL rules queueAclRules prints', () => {
  const queue = uniqueGroup('q-acl');
  const rules = queueAclRules({ queue });
  const PASSWORD = 'queue-acl-password';
  let acl: RedisServer;
  beforeAll(async () => {
    acl = await startRedis({
      acl: [rules.worker, rules.enqueuer, rules.monitor].map((u) => `user ${u.user} ${u.rules.join(' ')} >${PASSWORD}`),
    });
  });
  afterAll(() => acl?.stop());
  const urlOf = (user: string) => `redis://${user}:${PASSWORD}@127.0.0.1:${acl.port}`;

  it('grant every command the queue scripts run', () => {
    const lua = joinPath(import.meta.dirname, '../src/lua');
    const called = (file: string) =>
      [...readFileSync(joinPath(lua, file), 'utf8').matchAll(/(?:call\(\s*|\{\s*)'([A-Z]+)'(?:,\s*'([A-Z]+)')?/g)].map(
        (m) =>
          m[1] === 'XGROUP' || m[1] === 'XINFO'
            ? `${m[1].toLowerCase()}|${m[2]?.toLowerCase()}`
            : (m[1] as string).toLowerCase(),
      );
    const scripts = ['guard.lua', 'common.lua', ...readdirSync(joinPath(lua, 'queue')).map((f) => `queue/${f}`)];
    for (const command of new Set(scripts.filter((f) => f !== 'queue/observe.lua').flatMap(called))) {
      expect(ENQUEUER_COMMANDS).toContain(command);
    }
    for (const command of new Set(['guard.lua', 'queue/observe.lua'].flatMap(called))) {
      expect(QUEUE_MONITOR_COMMANDS).toContain(command);
    }
    expect(WORKER_COMMANDS).toContain('blpop');
    expect(rules.worker.rules).toContain(`~understudy:{q:${queue}}:*`);
    expect(rules.monitor.rules).toContain(`%R~understudy:{q:${queue}}:*`);
  });

  it('let a worker, an enqueuer and a monitor do their work, and nothing on other keys', async () => {
    const settled: TaskSettled[] = [];
    const monitor = await monitorQueue({ redis: urlOf(rules.monitor.user), queue });
    try {
      const worker = await join({ queue, workerId: 'acl-worker', redis: urlOf(rules.worker.user) });
      worker.on('task', (s) => settled.push(s));
      await enqueue({ redis: urlOf(rules.enqueuer.user), queue }, { n: 1 });
      await waitFor(() => settled.length === 1, 'the task settled');
      expect(settled[0]?.outcome).toBe('completed');
      await waitFor(() => monitor.snapshot().workers.length === 1, 'the monitor sees the worker');
      await expect(enqueue({ redis: urlOf(rules.enqueuer.user), queue: `${queue}-other` }, 1)).rejects.toMatchObject({
        code: 'NO_PERMISSION',
      });
      await expect(enqueue({ redis: urlOf(rules.monitor.user), queue }, 1)).rejects.toMatchObject({
        code: 'NO_PERMISSION',
      });
    } finally {
      await monitor.close();
    }
  });
});
