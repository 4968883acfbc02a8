// `understudy queue Q`: a distributed queue's depth, workers, tasks in flight and dead letters,
// once or followed (--watch), as text or JSON, and its metrics. The workers run in this process.
import { enqueue, joinQueue, type QueueSnapshot, type QueueWorker, queueAclRules } from '@understudy/core';
import { freePort, metricValue, parseMetrics, type RedisServer, startRedis } from '@understudy/testkit';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cli, killLeftoverClis, understudy, uniqueGroup, waitFor } from './helpers.js';

let server: RedisServer;
const workers: QueueWorker[] = [];
const releases: (() => void)[] = [];

beforeAll(async () => {
  server = await startRedis();
});

afterAll(async () => {
  await server.stop();
});

afterEach(async () => {
  for (const release of releases.splice(0)) release();
  await Promise.allSettled(workers.splice(0).map((w) => w.leave()));
  await killLeftoverClis();
});

/** A worker whose handlers wait until the test ends, or fail when the task's data says so. */
async function work(
  queue: string,
  workerId: string,
  weight: number,
  capacity: number,
  redis = server.url,
): Promise<QueueWorker> {
  const held = new Promise<void>((resolve) => releases.push(resolve));
  const worker = await joinQueue({
    redis,
    queue,
    workerId,
    weight,
    capacity,
    maxDeliveries: 1,
    heartbeatInterval: 100,
    activationInterval: 1000,
    handler: async (task) => {
      if (task.data === 'fail') throw new Error('to the dead letters');
      await held;
    },
  });
  workers.push(worker);
  return worker;
}

/** A queue with a dead letter, a task in flight at its one worker `busy`, and one waiting. */
async function busyQueue(queue: string): Promise<string> {
  const busy = await work(queue, 'busy', 20, 1);
  await enqueue({ redis: server.url, queue }, 'fail');
  const held = await enqueue({ redis: server.url, queue }, 'held');
  await enqueue({ redis: server.url, queue }, 'waits');
  await waitFor(() => busy.inFlight === 1, 'a task in flight at busy');
  return held;
}

describe('understudy queue', { timeout: 90_000 }, () => {
  it('prints depth, workers, the task in flight and the dead letters as JSON', async () => {
    const queue = uniqueGroup('q-json');
    const held = await busyQueue(queue);

    const { code, stdout, stderr } = await understudy(['queue', queue, '--json', '--redis', server.url]);

    expect(code, stderr).toBe(0);
    const s = JSON.parse(stdout) as QueueSnapshot;
    expect(s).toMatchObject({ queue, depth: 1, inFlight: 1, dead: 1, quarantineUntil: 0 });
    expect(s.workers).toMatchObject([{ id: 'busy', weight: 20, capacity: 1, inFlight: 1, activationInterval: 1000 }]);
    expect(s.workers[0]?.lastReceivedAt).toBeGreaterThan(0);
    expect(s.tasks).toMatchObject([{ id: held, worker: 'busy', deliveries: 1 }]);
  });

  it('prints the same as tables without --json', async () => {
    const queue = uniqueGroup('q-text');
    const held = await busyQueue(queue);

    const { code, stdout, stderr } = await understudy(['queue', queue, '--redis', server.url]);

    expect(code, stderr).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`queue ${queue} · depth 1 · 1 in flight · 1 worker · 1 dead letter`);
    expect(lines[1]).toMatch(/^\s+WORKER\s+WEIGHT\s+CAPACITY\s+IN FLIGHT\s+LEASE\s+LAST RECEIVED$/);
    expect(lines[2]).toMatch(/^\s+busy\s+20\s+1\s+1\s+\S+ \d+\.\ds\s+\d\d:\d\d:\d\d\.\d{3} \(\d+\.\ds ago\)$/);
    expect(stdout).toMatch(/TASK\s+WORKER\s+DELIVERY\s+TOKEN\s+EXPIRES IN/);
    expect(stdout).toMatch(new RegExp(`^\\s+${held}\\s+busy\\s+1\\s+\\d+\\s+\\d+\\.\\ds$`, 'm'));
    expect(stdout).not.toContain('\u001b[');
  });

  it('exits 1 and says so for a queue that does not exist', async () => {
    const queue = uniqueGroup('nosuchqueue');

    const { code, stdout, stderr } = await understudy(['queue', queue, '--redis', server.url]);

    expect(code).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^understudy: no queue ${queue} under prefix understudy on redis:`));
  });

  it('exits 2 naming the bad input: a character a queue name may not have, --metrics-port without --watch', async () => {
    const [bad, metrics] = await Promise.all([
      understudy(['queue', 'bad{name', '--redis', server.url]),
      understudy(['queue', 'q', '--metrics-port', '0', '--redis', server.url]),
    ]);

    expect(bad.code, bad.stderr).toBe(2);
    expect(bad.stderr).toContain('character "{" is not allowed');
    expect(metrics.code, metrics.stderr).toBe(2);
    expect(metrics.stderr).toContain('--metrics-port needs --watch');
  });

  it('exits 3 when Redis cannot be reached', async () => {
    const port = await freePort();

    const { code, stderr } = await understudy(['queue', 'q', '--redis', `redis://127.0.0.1:${port}`]);

    expect(code, stderr).toBe(3);
    expect(stderr).toContain(`127.0.0.1:${port}`);
  });

  it('--watch --json prints the current state, then a line per change, and serves the queue metrics', async () => {
    const queue = uniqueGroup('q-watch');
    const watcher = new Cli(['queue', queue, '--watch', '--json', '--metrics-port', '0', '--redis', server.url]);
    await watcher.waitForStderr(/serving metrics at (http:\/\/\S+)/);
    const url = (/serving metrics at (http:\/\/\S+)/.exec(watcher.stderr) as RegExpExecArray)[1] as string;
    const printed = () => watcher.lines().map((line) => JSON.parse(line) as QueueSnapshot);
    await waitFor(() => printed().length === 1, 'the current state');
    expect(printed()[0]).toMatchObject({ queue, createdAt: 0, depth: 0, workers: [] });

    await enqueue({ redis: server.url, queue }, 'a');
    await waitFor(() => printed().at(-1)?.depth === 1, 'a line with depth 1');
    const worker = await work(queue, 'w', 5, 2);
    await waitFor(
      () => printed().at(-1)?.inFlight === 1,
      () => `a line with the task in flight; printed ${watcher.stdout}`,
    );
    expect(printed().at(-1)).toMatchObject({ depth: 0, workers: [{ id: 'w', inFlight: 1 }] });
    const scraped = parseMetrics(await (await fetch(url)).text());
    expect(metricValue(scraped, 'understudy_queue_in_flight', { queue })).toBe(1);
    expect(metricValue(scraped, 'understudy_queue_live_workers', { queue })).toBe(1);
    expect(metricValue(scraped, 'understudy_queue_capacity', { queue })).toBe(2);

    for (const release of releases.splice(0)) release();
    await worker.leave();
    await waitFor(() => printed().at(-1)?.workers.length === 0, 'a line without the worker');
    watcher.signal('SIGINT');
    const { code } = await watcher.result();
    expect(code, watcher.stderr).toBe(0);
  });

  it('--watch prints a headline per change when stdout is not a terminal', async () => {
    const queue = uniqueGroup('q-lines');
    const watcher = new Cli(['queue', queue, '--watch', '--redis', server.url]);
    await waitFor(
      () => watcher.lines().length === 1,
      () => `the first line; stderr: ${watcher.stderr}`,
      30_000,
    );
    await enqueue({ redis: server.url, queue }, 'a');
    await waitFor(() => watcher.lines().length === 2, 'a line for the change');
    expect(watcher.lines()).toEqual([
      `queue ${queue} · depth 0 · 0 in flight · 0 workers · 0 dead letters`,
      `queue ${queue} · depth 1 · 0 in flight · 0 workers · 0 dead letters`,
    ]);
    watcher.signal('SIGTERM');
    expect((await watcher.result()).code).toBe(0);
  });

  it('runs under the queue’s read-only monitor user (queueAclRules), a task in flight', async () => {
    const queue = uniqueGroup('q-acl');
    const rules = queueAclRules({ queue });
    const acl = await startRedis({
      acl: [rules.worker, rules.monitor].map((u) => `user ${u.user} ${u.rules.join(' ')} >queue-acl-password`),
    });
    const url = (user: string) => `redis://${user}:queue-acl-password@127.0.0.1:${acl.port}`;
    try {
      const worker = await work(queue, 'w', 1, 1, url(rules.worker.user));
      await enqueue({ redis: url(rules.worker.user), queue }, 'held');
      await waitFor(() => worker.inFlight === 1, 'the task in flight');

      const { code, stdout, stderr } = await understudy(['queue', queue, '--json', '--redis', url(rules.monitor.user)]);

      expect(code, stderr).toBe(0);
      expect(JSON.parse(stdout)).toMatchObject({
        queue,
        inFlight: 1,
        tasks: [{ worker: 'w' }],
        workers: [{ id: 'w' }],
      });
    } finally {
      for (const release of releases.splice(0)) release();
      await Promise.allSettled(workers.splice(0).map((w) => w.leave()));
      await acl.stop();
    }
  });

  it('--help prints its usage and exits 0', async () => {
    const { code, stdout, stderr } = await understudy(['queue', '--help']);

    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/^Usage: understudy queue \[options\] <queue>/);
    expect(stdout).toContain('--watch');
  });
});
