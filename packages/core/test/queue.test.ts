// Distributed queues (DESIGN §11): what a worker receives, in which order, how many at once,
// how fast, and how a delivery ends (completion, re-delivery, dead letters, leave).
import { type Advisory, enqueue, type QueueAdvisory, queueKeys, type Task, type TaskSettled } from '@understudy/core';
import { describe, expect, it } from 'vitest';
import { fileServer, gate, hrNow, unfinishedTasks, uniqueGroup, waitFor, workerFactory } from './helpers.js';

const { server, observer } = fileServer();
const join = workerFactory(server);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function put(queue: string, data: unknown = 'x'): Promise<string> {
  return enqueue({ redis: observer(), queue }, data);
}

describe('a queue', () => {
  it('delivers each task with its data as enqueued, and keeps no completed task', async () => {
    const queue = uniqueGroup('q-basic');
    const seen: Task[] = [];
    const settled: TaskSettled[] = [];
    const w = await join({ queue, workerId: 'w', handler: (task) => seen.push(task) });
    w.on('task', (s) => settled.push(s));
    const ids = [
      await put(queue, 'text'),
      await put(queue, Buffer.from([0, 10, 255])),
      await put(queue, { a: [1, 2] }),
    ];
    await waitFor(() => settled.length === 3, 'three tasks settled');
    expect(seen.map((t) => t.id)).toEqual(ids);
    expect(seen.map((t) => t.data)).toEqual(['text', Buffer.from([0, 10, 255]), { a: [1, 2] }]);
    expect(seen.map((t) => t.deliveries)).toEqual([1, 1, 1]);
    expect(settled.map((s) => s.outcome)).toEqual(['completed', 'completed', 'completed']);
    const keys = queueKeys(queue);
    expect(await unfinishedTasks(observer(), keys.tasks)).toBe(0);
    expect(await observer().hlen(keys.deliveries)).toBe(0);
    // The receipts of the accepted completions (newest first) go with the worker.
    const receipts = keys.inbox('w').replace(/inbox:w$/, 'receipts:w');
    expect(await observer().lrange(receipts, 0, -1)).toEqual(settled.map((s) => String(s.token)).reverse());
    await w.leave();
    expect(await observer().exists(receipts, keys.inbox('w'))).toBe(0);
  });

  it('gives the tasks that waited to a worker as it joins', async () => {
    const queue = uniqueGroup('q-waited');
    const ids = [await put(queue, 1), await put(queue, 2)];
    const seen: string[] = [];
    await join({ queue, workerId: 'late', capacity: 2, handler: (task) => seen.push(task.id) });
    await waitFor(() => seen.length === 2, 'both tasks ran');
    expect(seen).toEqual(ids);
  });

  it('gives each task to the heaviest worker with room, ties to the one that received least recently', async () => {
    const queue = uniqueGroup('q-order');
    const order: string[] = [];
    const gates = new Map<string, () => void>();
    const handler = (name: string) => async (task: Task) => {
      order.push(name);
      const g = gate();
      gates.set(task.id, () => g.open());
      await g.promise;
    };
    await join({ queue, workerId: 'heavy', weight: 20, handler: handler('heavy') });
    await join({ queue, workerId: 'b', weight: 10, handler: handler('b') });
    await join({ queue, workerId: 'c', weight: 10, handler: handler('c') });
    const release = async (id: string) => {
      await waitFor(() => gates.get(id), `task ${id} started`);
      gates.get(id)?.();
    };
    const t1 = await put(queue);
    const t2 = await put(queue);
    const t3 = await put(queue);
    await waitFor(() => order.length === 3, 'three tasks started');
    // Never received: equal recency, the id decides.
    expect(order).toEqual(['heavy', 'b', 'c']);
    await release(t2);
    const t4 = await put(queue);
    await waitFor(() => order.length === 4, 'the fourth task started');
    expect(order[3]).toBe('b'); // the only one with room
    await release(t3);
    await release(t4);
    await sleep(50);
    // b and c both have room; c received less recently than b (t3 before t4).
    const t5 = await put(queue);
    await waitFor(() => order.length === 5, 'the fifth task started');
    expect(order[4]).toBe('c');
    await release(t1);
    await sleep(50);
    await put(queue);
    await waitFor(() => order.length === 6, 'the sixth task started');
    expect(order[5]).toBe('heavy');
    for (const id of gates.keys()) await release(id);
    await release(t5);
  });

  it('never has more than capacity tasks in flight at a worker', async () => {
    const queue = uniqueGroup('q-capacity');
    const running = new Map<string, number>();
    const most = new Map<string, number>();
    let done = 0;
    const handler = (name: string) => async () => {
      running.set(name, (running.get(name) ?? 0) + 1);
      most.set(name, Math.max(most.get(name) ?? 0, running.get(name) ?? 0));
      await sleep(10);
      running.set(name, (running.get(name) ?? 0) - 1);
      done += 1;
    };
    await join({ queue, workerId: 'two', weight: 20, capacity: 2, handler: handler('two') });
    await join({ queue, workerId: 'three', weight: 10, capacity: 3, handler: handler('three') });
    await Promise.all(Array.from({ length: 60 }, () => put(queue)));
    await waitFor(() => done === 60, 'sixty tasks done', 10_000);
    expect(most.get('two')).toBe(2);
    expect(most.get('three')).toBe(3);
  });

  it('starts a task enqueued while a worker is idle within a few round trips, without waiting for a heartbeat', async () => {
    const queue = uniqueGroup('q-push');
    const started: number[] = [];
    // H = 1 s: a worker that found tasks by polling with its heartbeat would take up to a second.
    await join({
      queue,
      workerId: 'idle',
      heartbeatInterval: 1000,
      activationInterval: 3000,
      handler: () => started.push(hrNow()),
    });
    const latencies: number[] = [];
    const roundTrips: number[] = [];
    for (let i = 0; i < 10; i += 1) {
      await sleep(20);
      const ping = hrNow();
      await observer().ping();
      roundTrips.push(hrNow() - ping);
      const sent = hrNow();
      await put(queue);
      await waitFor(() => started.length === i + 1, 'the task started', 2000, 1);
      latencies.push((started[i] as number) - sent);
    }
    latencies.sort((a, b) => a - b);
    const median = latencies[5] as number;
    const roundTrip = Math.max(...roundTrips);
    // Enqueue, push, BLPOP reply: a few round trips; generous for two busy cores.
    expect(median).toBeLessThan(Math.max(50, 10 * roundTrip));
  });

  it('delivers a task again to another worker after completeTime, aborts the first signal first, and refuses its late completion', async () => {
    const queue = uniqueGroup('q-complete-time');
    const secondStarted = gate<number>();
    let abortedAt = 0;
    const slow = await join({
      queue,
      workerId: 'slow',
      weight: 20,
      completeTime: 200,
      handler: async (_task, { signal }) => {
        await new Promise((resolve) => signal.addEventListener('abort', resolve));
        abortedAt = hrNow();
        await secondStarted.promise; // completes late, after the second delivery started
        return 'late';
      },
    });
    const settled: TaskSettled[] = [];
    const errors: Error[] = [];
    slow.on('task', (s) => settled.push(s));
    slow.on('error', (e) => errors.push(e));
    let second: Task | undefined;
    let secondToken = 0;
    await join({
      queue,
      workerId: 'other',
      weight: 10,
      handler: (task, { token }) => {
        second = task;
        secondToken = token;
        secondStarted.open(hrNow());
      },
    });
    const id = await put(queue);
    const startedAt = await secondStarted.promise;
    expect(second?.id).toBe(id);
    expect(second?.deliveries).toBe(2);
    expect(abortedAt).toBeGreaterThan(0);
    expect(abortedAt).toBeLessThanOrEqual(startedAt);
    await waitFor(() => settled.length === 1, 'the late completion settled');
    expect(settled[0]?.outcome).toBe('stale');
    expect(settled[0]?.token).toBeLessThan(secondToken);
    expect(errors[0]).toMatchObject({ code: 'STALE_TASK', taskId: id, queue });
  });

  it('moves a task to the dead letters after maxDeliveries failed deliveries, with a DEAD_LETTER advisory', async () => {
    const queue = uniqueGroup('q-dead');
    const deliveries: number[] = [];
    const advisories: (QueueAdvisory | Advisory)[] = [];
    const w = await join({
      queue,
      workerId: 'failing',
      maxDeliveries: 3,
      handler: (task) => {
        deliveries.push(task.deliveries);
        throw new Error('cannot');
      },
    });
    w.on('advisory', (a) => advisories.push(a));
    const id = await put(queue, { n: 1 });
    await waitFor(() => advisories.some((a) => a.code === 'DEAD_LETTER'), 'a DEAD_LETTER advisory');
    expect(deliveries).toEqual([1, 2, 3]);
    expect(advisories.find((a) => a.code === 'DEAD_LETTER')).toMatchObject({ task: id, deliveries: 3, queue });
    const keys = queueKeys(queue);
    const dead = await observer().xrange(keys.dead, '-', '+');
    expect(dead).toHaveLength(1);
    expect(dead[0]?.[1]).toEqual(['id', id, 'deliveries', '3', 'reason', 'failed', 't', 'j', 'd', '{"n":1}']);
    expect(await unfinishedTasks(observer(), keys.tasks)).toBe(0);
  });

  it('waits on leave for the handlers running, completes them once, and leaves the rest to other workers', async () => {
    const queue = uniqueGroup('q-leave');
    const runs = new Map<string, string[]>();
    const record = (name: string) => async (task: Task) => {
      runs.set(task.id, [...(runs.get(task.id) ?? []), name]);
      await sleep(80);
    };
    const leaving = await join({ queue, workerId: 'leaving', weight: 20, capacity: 2, handler: record('leaving') });
    const settled: TaskSettled[] = [];
    leaving.on('task', (s) => settled.push(s));
    await join({ queue, workerId: 'staying', weight: 10, handler: record('staying') });
    const first = [await put(queue), await put(queue)];
    await waitFor(() => first.every((id) => runs.has(id)), 'both tasks started at the leaving worker');
    const left = leaving.leave();
    const later = await Promise.all(Array.from({ length: 4 }, () => put(queue)));
    await left;
    expect(settled.filter((s) => s.outcome === 'completed').map((s) => s.id)).toEqual(expect.arrayContaining(first));
    await waitFor(() => later.every((id) => runs.has(id)), 'the later tasks ran', 5000);
    await sleep(100);
    for (const id of first) expect(runs.get(id)).toEqual(['leaving']);
    for (const id of later) expect(runs.get(id)).toHaveLength(1);
    expect(await unfinishedTasks(observer(), queueKeys(queue).tasks)).toBe(0);
  });

  it('completes every task once or moves it to the dead letters, with failing and overrunning handlers', async () => {
    const queue = uniqueGroup('q-mixed');
    const accepted = new Map<string, number>();
    /** Completions whose answer was lost (a timed-out attempt, then a retry found the task gone). */
    const unconfirmed = new Set<string>();
    const running = new Map<string, number>();
    let overlap = 0;
    let settledCount = 0;
    const handler = async (task: Task, { signal }: { signal: AbortSignal }) => {
      running.set(task.id, (running.get(task.id) ?? 0) + 1);
      try {
        const roll = Math.random();
        if (roll < 0.2) throw new Error('flaky');
        // Some overrun completeTime (150 ms) and stop only when their signal aborts.
        const ms = roll < 0.3 ? 400 : 5;
        await new Promise((resolve) => {
          const timer = setTimeout(resolve, ms);
          signal.addEventListener('abort', () => {
            clearTimeout(timer);
            resolve(undefined);
          });
        });
      } finally {
        running.set(task.id, (running.get(task.id) ?? 1) - 1);
      }
    };
    for (const [id, weight] of [
      ['m1', 10],
      ['m2', 10],
      ['m3', 5],
    ] as const) {
      const w = await join({ queue, workerId: id, weight, capacity: 3, completeTime: 150, maxDeliveries: 3, handler });
      w.on('task', (s) => {
        settledCount += 1;
        if (s.outcome === 'completed') accepted.set(s.id, (accepted.get(s.id) ?? 0) + 1);
        if (s.outcome === 'unconfirmed') unconfirmed.add(s.id);
      });
    }
    const probe = setInterval(() => {
      for (const n of running.values()) overlap = Math.max(overlap, n);
    }, 1);
    const ids = await Promise.all(Array.from({ length: 60 }, (_, i) => put(queue, i)));
    const keys = queueKeys(queue);
    try {
      await waitFor(
        async () => (await unfinishedTasks(observer(), keys.tasks)) === 0 && settledCount > 0,
        'every task completed or dead',
        20_000,
        50,
      );
    } finally {
      clearInterval(probe);
    }
    const dead = new Set((await observer().xrange(keys.dead, '-', '+')).map(([, f]) => f[1]));
    for (const id of ids) {
      // Never twice; and never lost, unless a completion's answer was (then it may be either).
      const ends = (accepted.get(id) ?? 0) + (dead.has(id) ? 1 : 0);
      expect(ends, `task ${id}`).toBeLessThanOrEqual(1);
      if (!unconfirmed.has(id)) expect(ends, `task ${id}`).toBe(1);
    }
    // The handlers stop when their signal aborts: so no task ran at two workers at once.
    expect(overlap).toBe(1);
  });
});
