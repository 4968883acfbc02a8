// Distributed queues under faults (DESIGN §11 with S2–S6): a worker that stops renewing, a Redis
// restart with tasks in flight, and lost state.

import { setTimeout as sleep } from 'node:timers/promises';
import { describeQueue, enqueue, type QueueAdvisory, queueKeys, type TaskSettled } from '@understudy/core';
import { type RedisServer, startChaosProxy, startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import {
  completeAsWorker,
  fileServer,
  gate,
  hrNow,
  popDelivery,
  renewAsWorker,
  Switch,
  unfinishedTasks,
  uniqueGroup,
  waitFor,
  workerFactory,
} from './helpers.js';

const { server, observer } = fileServer();
const join = workerFactory(server);
const A = 400;

describe('a queue under faults', () => {
  it("delivers a task again once its worker's lease lapsed, after that worker's signal aborted", async () => {
    const queue = uniqueGroup('q-lapse');
    const cut = await Switch.start(server().port);
    try {
      let abortedAt = 0;
      const taken = gate();
      const cutOff = await join({
        queue,
        workerId: 'cut-off',
        weight: 20,
        redis: cut.url,
        handler: async (_task, { signal }) => {
          taken.open();
          await new Promise((resolve) => signal.addEventListener('abort', resolve));
          abortedAt = hrNow();
        },
      });
      const advisories: QueueAdvisory[] = [];
      cutOff.on('advisory', (a) => advisories.push(a));
      const second = gate<number>();
      let deliveries = 0;
      await join({
        queue,
        workerId: 'healthy',
        weight: 10,
        handler: (task) => {
          deliveries = task.deliveries;
          second.open(hrNow());
        },
      });
      const cutAt = hrNow();
      await enqueue({ redis: observer(), queue }, 'work');
      await taken.promise;
      cut.to(1); // nothing listens there: renewals fail from now on
      const startedAt = await second.promise;
      expect(deliveries).toBe(2);
      expect(abortedAt).toBeGreaterThan(0);
      expect(abortedAt).toBeLessThanOrEqual(startedAt);
      expect(startedAt - cutAt).toBeGreaterThanOrEqual(A * 0.9);
      expect(advisories.map((a) => a.code)).toContain('LEASE_LOST');
    } finally {
      await cut.close();
    }
  });

  it('completes the tasks in flight across a Redis restart and dispatches nothing more until the quarantine ends', async () => {
    const own: RedisServer = await startRedis({ appendOnly: 'always' });
    const admin = new Redis(own.url);
    try {
      const queue = uniqueGroup('q-restart');
      const release = gate();
      const settled: TaskSettled[] = [];
      const started: { id: string; t: number }[] = [];
      const advisories: QueueAdvisory[] = [];
      const w = await join({
        queue,
        workerId: 'through',
        redis: own.url,
        heartbeatInterval: 100,
        activationInterval: 2000,
        handler: async (task) => {
          started.push({ id: task.id, t: hrNow() });
          if (started.length === 1) await release.promise;
        },
      });
      w.on('task', (s) => settled.push(s));
      w.on('advisory', (a) => advisories.push(a));
      const first = await enqueue({ redis: admin, queue }, 1);
      await waitFor(() => started.length === 1, 'the first task started');
      const second = await enqueue({ redis: admin, queue }, 2);
      await own.restart();
      const restartedAt = hrNow();
      await waitFor(() => advisories.some((a) => a.code === 'QUARANTINE'), 'a QUARANTINE advisory', 5000);
      expect(advisories.find((a) => a.code === 'QUARANTINE')).toMatchObject({ reason: 'server-changed' });
      release.open();
      await waitFor(() => settled.length === 2, 'both tasks settled', 8000);
      expect(settled.map((s) => [s.id, s.outcome])).toEqual([
        [first, 'completed'],
        [second, 'completed'],
      ]);
      expect(started.map((s) => s.id)).toEqual([first, second]);
      // Dispatched only after the quarantine (A = 2 s, on Redis's clock, from after the restart).
      expect((started[1]?.t ?? 0) - restartedAt).toBeGreaterThanOrEqual(2000 * 0.9);
    } finally {
      admin.disconnect();
      await own.stop();
    }
  });

  it('reports a completion whose first attempt Redis ran but whose reply came too late as completed, not stale', async () => {
    const queue = uniqueGroup('q-late-reply');
    const proxy = await startChaosProxy({ target: server() });
    try {
      const release = gate();
      const settled: TaskSettled[] = [];
      const w = await join({
        queue,
        workerId: 'late-reply',
        redis: proxy.url(),
        heartbeatInterval: 100, // command timeout 80 ms
        activationInterval: 2000,
        handler: () => release.promise,
      });
      w.on('task', (s) => settled.push(s));
      w.on('error', () => undefined);
      const id = await enqueue({ redis: observer(), queue }, 'work');
      await waitFor(async () => (await observer().hlen(queueKeys(queue).deliveries)) === 1, 'the task delivered');
      // The completion reaches Redis (and runs) after 120 ms; its reply comes after the command timed out.
      proxy.setDelay(120);
      release.open();
      await waitFor(
        async () => (await unfinishedTasks(observer(), queueKeys(queue).tasks)) === 0,
        'the completion to run',
      );
      proxy.setDelay(0);
      await waitFor(() => settled.length === 1, 'the task settled', 5000);
      expect(settled.map((s) => [s.id, s.outcome])).toEqual([[id, 'completed']]);
    } finally {
      await proxy.close();
    }
  });

  it('quarantines after a key of the queue was lost, and the worker in flight keeps its task', async () => {
    const queue = uniqueGroup('q-lost');
    const keys = queueKeys(queue);
    const release = gate();
    const runs: { id: string; worker: string; t: number }[] = [];
    const settled: TaskSettled[] = [];
    const advisories: QueueAdvisory[] = [];
    const holder = await join({
      queue,
      workerId: 'holder',
      weight: 20,
      handler: async (task) => {
        runs.push({ id: task.id, worker: 'holder', t: hrNow() });
        await release.promise;
      },
    });
    holder.on('task', (s) => settled.push(s));
    holder.on('advisory', (a) => advisories.push(a));
    const first = await enqueue({ redis: observer(), queue }, 1);
    await waitFor(() => runs.length === 1, 'the first task started');
    await observer().del(keys.deliveries);
    const lostAt = hrNow();
    await join({
      queue,
      workerId: 'newcomer',
      weight: 10,
      handler: (task) => {
        runs.push({ id: task.id, worker: 'newcomer', t: hrNow() });
      },
    });
    const second = await enqueue({ redis: observer(), queue }, 2);
    await waitFor(() => advisories.some((a) => a.code === 'QUARANTINE'), 'a QUARANTINE advisory');
    expect(String(advisories.find((a) => a.code === 'QUARANTINE')?.reason)).toMatch(/^lost-state/);
    // The holder still runs the first task: the second goes to the newcomer, after the quarantine.
    await waitFor(() => runs.length === 2, 'the second task ran', 3000);
    expect(runs[1]).toMatchObject({ id: second, worker: 'newcomer' });
    release.open();
    await waitFor(() => settled.length === 1, 'the first task settled');
    expect(settled[0]).toMatchObject({ id: first, outcome: 'completed' });
    // Nothing dispatched during the quarantine (A on Redis's clock, from after the loss).
    expect((runs[1]?.t ?? 0) - lostAt).toBeGreaterThanOrEqual(A * 0.9);
    expect(runs.filter((r) => r.id === first)).toHaveLength(1);
  });

  it('quarantines an idle queue, nothing in flight, whose workers or leases key was lost', async () => {
    // Idle, the queue's renewals check its keys with one EXISTS more, not by counting them.
    for (const lost of ['workers', 'leases'] as const) {
      const queue = uniqueGroup(`q-idle-${lost}`);
      const keys = queueKeys(queue);
      const renew = (workerId: string) =>
        renewAsWorker(observer(), keys, { workerId, claims: [], joining: false, activationInterval: A });
      await renew('first');
      await renew('second');
      await enqueue({ redis: observer(), queue }, 'work');
      const held = await popDelivery(observer(), keys, 'first');
      await completeAsWorker(observer(), keys, {
        workerId: 'first',
        taskId: held.id,
        token: held.token,
        inline: false,
      });
      // The tasks stream is there, no delivery nor deadline: what an idle queue's keys are.
      expect(await observer().exists(keys.tasks, keys.deliveries, keys.deadlines)).toBe(1);
      expect((await renew('second')).quarantineReason).toBe('');
      await observer().del(keys[lost]);
      expect((await renew('second')).quarantineReason).toBe('lost-state:leases');
    }
  });

  it("quarantines for the workers' activation interval after the config was lost", async () => {
    const queue = uniqueGroup('q-config');
    const started: number[] = [];
    const advisories: QueueAdvisory[] = [];
    const w = await join({ queue, workerId: 'keeps', handler: () => started.push(hrNow()) });
    w.on('advisory', (a) => advisories.push(a));
    await observer().del(queueKeys(queue).config);
    const lostAt = hrNow();
    await enqueue({ redis: observer(), queue }, 'after the loss');
    await waitFor(() => started.length === 1, 'the task started', 5000);
    expect(advisories.find((a) => a.code === 'QUARANTINE')).toMatchObject({ reason: 'lost-state:config' });
    expect((started[0] ?? 0) - lostAt).toBeGreaterThanOrEqual(A * 0.9);
    // The workers' A (400 ms), not the 3 s a queue without workers would wait.
    expect((started[0] ?? 0) - lostAt).toBeLessThan(2000);
  });

  it('after a Redis that lost everything: tokens keep growing, the queue quarantines, and the task in flight is given up', async () => {
    const own: RedisServer = await startRedis();
    const admin = new Redis(own.url);
    try {
      const queue = uniqueGroup('q-wiped');
      let firstToken = 0;
      let aborted = false;
      const advisories: QueueAdvisory[] = [];
      const settled: TaskSettled[] = [];
      const release = gate();
      const tokens: number[] = [];
      const w = await join({
        queue,
        workerId: 'survivor',
        redis: own.url,
        heartbeatInterval: 100,
        activationInterval: 2000,
        handler: async (_task, { signal, token }) => {
          tokens.push(token);
          if (firstToken !== 0) return;
          firstToken = token;
          signal.addEventListener('abort', () => {
            aborted = true;
          });
          await release.promise;
        },
      });
      w.on('advisory', (a) => advisories.push(a));
      w.on('task', (s) => settled.push(s));
      await enqueue({ redis: admin, queue }, 'before');
      await waitFor(() => firstToken > 0, 'the first task started');
      await own.restart({ keepData: false });
      const wipedAt = hrNow();
      await waitFor(() => aborted, 'the running task aborted: the queue no longer gives it', 5000);
      // The worker's token floor is above the wiped counter (S2, S6).
      expect(advisories.find((a) => a.code === 'QUARANTINE')).toMatchObject({ reason: 'lost-state:token' });
      release.open();
      await waitFor(() => settled.length === 1, 'the first task settled');
      expect(settled[0]?.outcome).toBe('stale');
      await enqueue({ redis: admin, queue }, 'after');
      await waitFor(() => tokens.length === 2, 'the second task started', 5000);
      expect(tokens[1]).toBeGreaterThan(firstToken);
      expect(hrNow() - wipedAt).toBeGreaterThanOrEqual(2000 * 0.9);
    } finally {
      admin.disconnect();
      await own.stop();
    }
  });
});

// Nothing waits for a periodic renewal (H = 1000 ms here): a worker's timer runs one at the moment
// its latest reply said a lease lapses or a delivery expires, and that renewal hands the task on.
describe('a queue hands a task on at the Redis moment it became free', () => {
  const slow = { heartbeatInterval: 1000, activationInterval: 2000 };
  const bound = 150; // ms past the moment, in Redis time: a loaded 2-core machine, well below H

  it("starts a lapsed worker's task at another worker within a few round trips of the lease deadline", async () => {
    const queue = uniqueGroup('q-watch-lapse');
    const cut = await Switch.start(server().port);
    try {
      const taken = gate();
      const stuck = gate();
      await join({
        ...slow,
        queue,
        workerId: 'cut-off',
        weight: 20,
        redis: cut.url,
        handler: async () => {
          taken.open();
          await stuck.promise;
        },
      });
      // Half an H out of step: the healthy worker's periodic renewals come ~500 ms after the deadline.
      await sleep(slow.heartbeatInterval / 2);
      const second = gate<number>();
      const healthy = await join({ ...slow, queue, workerId: 'healthy', weight: 10 });
      healthy.on('start', (t) => second.open(t.deliveredAt));
      await enqueue({ redis: observer(), queue }, 'work');
      await taken.promise;
      cut.to(1); // nothing listens there: renewals fail from now on
      await sleep(100); // a renewal in flight through the switch lands or fails
      const deadline = Number(await observer().zscore(queueKeys(queue).leases, 'cut-off'));
      const deliveredAt = await second.promise;
      stuck.open();
      expect(deliveredAt).toBeGreaterThanOrEqual(deadline);
      expect(deliveredAt - deadline).toBeLessThanOrEqual(bound);
    } finally {
      await cut.close();
    }
  });

  it('starts a task whose delivery expired at another worker within a few round trips of its expiry', async () => {
    const queue = uniqueGroup('q-watch-expiry');
    const stuck = gate();
    const first = gate<number>();
    const slowWorker = await join({
      ...slow,
      queue,
      workerId: 'slow',
      weight: 20,
      completeTime: 300,
      handler: () => stuck.promise,
    });
    slowWorker.on('start', (t) => first.open(t.deliveredAt + 300));
    const second = gate<number>();
    const other = await join({ ...slow, queue, workerId: 'other', weight: 10 });
    other.on('start', (t) => second.open(t.deliveredAt));
    await enqueue({ redis: observer(), queue }, 'work');
    const expires = await first.promise;
    const deliveredAt = await second.promise;
    stuck.open();
    expect(deliveredAt).toBeGreaterThanOrEqual(expires);
    expect(deliveredAt - expires).toBeLessThanOrEqual(bound);
  });
});

describe('a queue whose key was restored from an older copy (S6)', () => {
  it('refuses the completion of the worker a task was taken from, and the task stays in flight at one worker', async () => {
    const queue = uniqueGroup('q-stale');
    const keys = queueKeys(queue);
    const runs: { worker: string; deliveries: number }[] = [];
    const settled: { worker: string; outcome: string }[] = [];
    const releaseFirst = gate();
    const releaseSecond = gate();
    const first = await join({
      queue,
      workerId: 'first',
      weight: 20,
      completeTime: 300,
      handler: async (task) => {
        runs.push({ worker: 'first', deliveries: task.deliveries });
        await releaseFirst.promise;
      },
    });
    first.on('error', () => undefined);
    first.on('task', (s) => settled.push({ worker: 'first', outcome: s.outcome }));
    const second = await join({
      queue,
      workerId: 'second',
      weight: 10,
      handler: async (task) => {
        runs.push({ worker: 'second', deliveries: task.deliveries });
        await releaseSecond.promise;
      },
    });
    second.on('task', (s) => settled.push({ worker: 'second', outcome: s.outcome }));
    await enqueue({ redis: observer(), queue }, 'work');
    await waitFor(() => runs.length === 1, 'the first delivery');
    await observer().copy(keys.deliveries, `${keys.deliveries}:older`);
    // Its completeTime passes: the task goes to the other worker.
    await waitFor(() => runs.length === 2, 'the second delivery', 3000);
    expect(runs[1]).toMatchObject({ worker: 'second', deliveries: 2 });
    await observer().copy(`${keys.deliveries}:older`, keys.deliveries, 'REPLACE');
    releaseFirst.open();
    await waitFor(() => settled.length > 0, "the first worker's completion settled");
    expect(settled[0]).toMatchObject({ worker: 'first', outcome: 'stale' });
    // Nobody else starts it while the second worker runs it (the record named the first worker,
    // with its delivery expired: it went back to the queue and to the first worker again).
    await sleep(3 * A);
    expect(runs).toHaveLength(2);
    releaseSecond.open();
    await waitFor(() => settled.length === 2, "the second worker's completion settled");
    expect(settled[1]).toMatchObject({ worker: 'second', outcome: 'completed' });
    expect(await observer().hlen(keys.deliveries)).toBe(0);
    // Each worker is counted with what it holds, nothing now: the record named the first worker,
    // and the counts, which named the second, were corrected by it once over.
    const { workers } = await describeQueue({ redis: observer(), queue });
    expect(workers.map((w) => [w.id, w.inFlight])).toEqual([
      ['first', 0],
      ['second', 0],
    ]);
  });

  // Two workers driven through the scripts alone ('first' the heavier); a task delivered to
  // 'first', the deliveries copied, the delivery expired and handed to 'second' by its renewal,
  // then the copy put back: the record names 'first' again, with its token.
  const EXPIRES = 200;
  async function takenFromFirst(queue: string) {
    const keys = queueKeys(queue);
    const renew = (workerId: string, weight: number) =>
      renewAsWorker(observer(), keys, { workerId, weight, claims: [], joining: false, completeTime: EXPIRES });
    await renew('first', 2);
    await renew('second', 1);
    const task = await enqueue({ redis: observer(), queue }, 'work');
    const first = await popDelivery(observer(), keys, 'first');
    expect(first.id).toBe(task);
    await observer().copy(keys.deliveries, `${keys.deliveries}:older`);
    await sleep(EXPIRES + 50);
    await renew('second', 1);
    expect((await popDelivery(observer(), keys, 'second')).id).toBe(task);
    await observer().copy(`${keys.deliveries}:older`, keys.deliveries, 'REPLACE');
    return { keys, renew, task, first };
  }

  it("refuses, with no timing to it, the completion an older record names: the task stays at the group's holder", async () => {
    // The test above through real workers, whose renewals may take the record back first; here
    // the scripts alone, in an order that cannot change.
    const { keys, task, first } = await takenFromFirst(uniqueGroup('q-stale-complete'));
    const done = await completeAsWorker(observer(), keys, {
      workerId: 'first',
      taskId: task,
      token: first.token,
      inline: true,
    });
    expect(done.status).toBe('stale');
    expect(done.next).toEqual([]);
    expect(done.quarantineReason).toBe('lost-state:deliveries');
    const pending = (await observer().xpending(keys.tasks, 'workers', task, task, 1)) as [string, string][];
    expect(pending[0]?.[1]).toBe('w:second');
    expect(await observer().llen(keys.inbox('first'))).toBe(0);
  });

  it('hands an expired task back from the worker the group says holds it, not the one an older record names', async () => {
    const queue = uniqueGroup('q-stale-reap');
    const { keys, renew } = await takenFromFirst(queue);
    // That delivery expires too, and the record says the first worker held it.
    await sleep(EXPIRES + 50);
    const reply = await renew('first', 2);
    expect(reply.quarantineReason).toBe('lost-state:deliveries');
    // Each worker is counted with what the group says it holds: nothing (the task waits).
    const pending = await observer().xpending(keys.tasks, 'workers');
    const held = new Map(((pending as unknown[])[3] as [string, string][] | null)?.map(([c, n]) => [c, Number(n)]));
    const { workers } = await describeQueue({ redis: observer(), queue });
    expect(workers.map((w) => [w.id, w.inFlight])).toEqual([
      ['first', held.get('w:first') ?? 0],
      ['second', held.get('w:second') ?? 0],
    ]);
    expect(workers.map((w) => w.inFlight)).toEqual([0, 0]);
  });

  it('keeps a worker whose lease an older copy of the leases ended: its record says when the lease ends', async () => {
    const queue = uniqueGroup('q-stale-leases');
    const keys = queueKeys(queue);
    const LEASE = 600;
    const renew = (workerId: string, weight: number, claims: { id: string; token: number; expires: number }[] = []) =>
      renewAsWorker(observer(), keys, { workerId, weight, claims, joining: false, activationInterval: LEASE });
    await renew('first', 2);
    await renew('second', 1);
    await enqueue({ redis: observer(), queue }, 'work');
    const held = await popDelivery(observer(), keys, 'first');
    await observer().copy(keys.leases, `${keys.leases}:older`);
    for (let i = 0; i < 5; i++) {
      await sleep(LEASE / 3);
      await renew('first', 2, [{ id: held.id, token: held.token, expires: held.expires }]);
      await renew('second', 1);
    }
    // The record keeps what the worker sent (its pid: 1) and when its lease ends.
    const record = (await observer().eval(
      "return { cmsgpack.unpack(redis.call('HGET', KEYS[1], ARGV[1])) }",
      1,
      keys.workers,
      'first',
    )) as number[];
    expect(record[11]).toBe(1);
    expect(record[12]).toBe(Number(await observer().zscore(keys.leases, 'first')));
    await observer().copy(`${keys.leases}:older`, keys.leases, 'REPLACE');
    // Both leases ended before the copy was put back; the workers renewed all along.
    const reply = await renew('second', 1);
    expect(reply).toMatchObject({ status: 'ok', quarantineReason: 'lost-state:leases' });
    const snapshot = await describeQueue({ redis: observer(), queue });
    expect(snapshot.workers.map((w) => w.id)).toEqual(['first', 'second']);
    expect(snapshot.tasks.map((t) => [t.id, t.worker, t.deliveries])).toEqual([[held.id, 'first', 1]]);
  });
});
