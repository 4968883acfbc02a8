// What operators see of a queue: describeQueue's tasks in flight and workers, and the queue's
// Prometheus metrics from a queue monitor and from workers.
import { setTimeout as sleep } from 'node:timers/promises';
import { describeQueue, enqueue, monitorQueue, type QueueMonitor, type TaskStarted } from '@understudy/core';
import { createMetrics, type UnderstudyMetrics } from '@understudy/core/metrics';
import { metricValue, parseMetrics } from '@understudy/testkit';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { FAST, fileServer, gate, uniqueGroup, waitFor, workerFactory } from './helpers.js';

const { server, observer } = fileServer();
const join = workerFactory(server);

const monitors: QueueMonitor[] = [];
const stops: (() => void)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) stop();
  await Promise.all(monitors.splice(0).map((m) => m.close()));
});

async function value(m: UnderstudyMetrics, name: string, labels: Record<string, string>) {
  return metricValue(parseMetrics(await m.registry.metrics()), name, labels);
}

function waitForValue(m: UnderstudyMetrics, name: string, labels: Record<string, string>, expected: number) {
  let last: number | undefined;
  return waitFor(
    async () => {
      last = await value(m, name, labels);
      return last === expected;
    },
    () => `${name}${JSON.stringify(labels)} to be ${expected}; it is ${last}`,
  );
}

describe('describeQueue', () => {
  it('lists the tasks in flight with their worker, and when each worker last received a task', async () => {
    const queue = uniqueGroup('q-describe');
    expect(await describeQueue({ redis: server().url, queue })).toMatchObject({ createdAt: 0, tasks: [] });
    const held = gate();
    const busy = await join({ queue, workerId: 'busy', weight: 2, capacity: 2, handler: () => held.promise });
    const idle = await join({ queue, workerId: 'idle', weight: 1 });
    const before = (await describeQueue({ redis: server().url, queue })).serverTime;
    const ids = [await enqueue({ redis: observer(), queue }, 'a'), await enqueue({ redis: observer(), queue }, 'b')];
    await waitFor(() => busy.inFlight === 2, 'both tasks at the heavier worker');
    const s = await describeQueue({ redis: server().url, queue });
    expect(s.createdAt).toBeGreaterThan(0);
    expect(s.createdAt).toBeLessThanOrEqual(before);
    expect(s.tasks.map((t) => t.id).sort()).toEqual([...ids].sort());
    for (const t of s.tasks) {
      expect(t).toMatchObject({ worker: 'busy', deliveries: 1 });
      expect(t.token).toBeGreaterThan(0);
      expect(t.remainingMs).toBeGreaterThan(0);
      expect(t.remainingMs).toBeLessThanOrEqual(30_000);
    }
    const [heavy, light] = s.workers;
    expect(heavy?.id).toBe('busy');
    expect(heavy?.lastReceivedAt).toBeGreaterThanOrEqual(before);
    expect(heavy?.lastReceivedAt).toBeLessThanOrEqual(s.serverTime);
    expect(light).toMatchObject({ id: 'idle', lastReceivedAt: 0, activationInterval: FAST.activationInterval });
    held.open();
    await waitFor(async () => (await describeQueue({ redis: server().url, queue })).tasks.length === 0, 'no tasks');
    expect(idle.inFlight).toBe(0);
  });
});

describe('queue metrics', () => {
  it('follow depth, tasks in flight, workers and dead letters, and time the wait and the handlers', async () => {
    const m = createMetrics({ registry: new Registry() });
    const queue = uniqueGroup('q-metrics');
    const labels = { queue };
    const monitor = await monitorQueue({ redis: server().url, queue });
    monitors.push(monitor);
    stops.push(m.instrumentQueueMonitor(monitor));
    await enqueue({ redis: observer(), queue }, 'fails twice');
    await waitForValue(m, 'understudy_queue_depth', labels, 1);
    expect(await value(m, 'understudy_queue_live_workers', labels)).toBe(0);
    const waited = 300;
    await sleep(waited);

    const held = gate();
    let attempts = 0;
    const worker = await join({
      queue,
      workerId: 'w',
      capacity: 3,
      maxDeliveries: 2,
      handler: async () => {
        attempts += 1;
        if (attempts === 3) await held.promise;
        else throw new Error('not this time');
      },
    });
    const starts: TaskStarted[] = [];
    worker.on('start', (t) => starts.push(t));
    stops.push(m.instrumentWorker(worker));
    await waitForValue(m, 'understudy_queue_dead_letters', labels, 1);
    expect(starts.map((t) => t.deliveries)).toEqual([1, 2]);
    expect(await value(m, 'understudy_queue_tasks_total', { queue, outcome: 'failed' })).toBe(2);
    expect(await value(m, 'understudy_queue_redeliveries_total', labels)).toBe(1);
    expect(await value(m, 'understudy_queue_task_wait_seconds_count', labels)).toBe(1);
    const wait = (await value(m, 'understudy_queue_task_wait_seconds_sum', labels)) as number;
    // Enqueued with no worker: it waited for the join, and was delivered by it.
    expect(wait).toBeGreaterThanOrEqual(waited / 1000);
    expect(wait).toBeLessThan(waited / 1000 + 5);
    expect(await value(m, 'understudy_queue_advisories_total', { queue, code: 'DEAD_LETTER' })).toBe(1);

    await enqueue({ redis: observer(), queue }, 'held');
    await waitForValue(m, 'understudy_queue_in_flight', labels, 1);
    expect(await value(m, 'understudy_queue_depth', labels)).toBe(0);
    expect(await value(m, 'understudy_queue_live_workers', labels)).toBe(1);
    expect(await value(m, 'understudy_queue_capacity', labels)).toBe(3);
    expect(await value(m, 'understudy_queue_quarantined', labels)).toBe(0);
    const slow = 200;
    await sleep(slow);
    held.open();
    await waitForValue(m, 'understudy_queue_tasks_total', { queue, outcome: 'completed' }, 1);
    expect(await value(m, 'understudy_queue_task_duration_seconds_count', labels)).toBe(3);
    expect(await value(m, 'understudy_queue_task_duration_seconds_sum', labels)).toBeGreaterThanOrEqual(slow / 1000);
    await waitForValue(m, 'understudy_queue_in_flight', labels, 0);
  });

  it('stop recording when told to, and drop the queue’s gauges', async () => {
    const m = createMetrics({ registry: new Registry() });
    const queue = uniqueGroup('q-stop');
    const monitor = await monitorQueue({ redis: server().url, queue });
    monitors.push(monitor);
    const stop = m.instrumentQueueMonitor(monitor);
    await enqueue({ redis: observer(), queue }, 'x');
    await waitForValue(m, 'understudy_queue_depth', { queue }, 1);
    stop();
    expect(await value(m, 'understudy_queue_depth', { queue })).toBeUndefined();
    await enqueue({ redis: observer(), queue }, 'y');
    await waitFor(() => monitor.snapshot().depth === 2, 'the monitor to read depth 2');
    expect(await value(m, 'understudy_queue_depth', { queue })).toBeUndefined();
  });
});
