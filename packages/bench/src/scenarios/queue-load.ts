// Load on the queues: throughput with 1 to 16 workers, and enqueue → start at low load.
import { queueKeys, readQueue } from '@understudy/core';
import { hrNow, sleep } from '../clock.js';
import type { BenchContext } from '../context.js';
import type { QueueSystem, QueueWorkerEvent } from '../queue/types.js';
import { summarize } from '../stats.js';
import { commandStats, redisCpuSeconds } from './cost.js';
import { onFreshQueue, type WorkerProcess } from './queue-harness.js';

/** One drain of `tasks` tasks by `workers` workers. */
export interface ThroughputRun {
  /** Completions the workers reported (more than the tasks: some task completed twice). */
  completed: number;
  /** Deliveries that ended otherwise, by outcome (understudy: a completion refused as `stale`). */
  notCompleted: Record<string, number>;
  /** Tasks completed per second: first enqueue → last completion. */
  perSecond: number;
  /** Tasks enqueued per second by the one producer (32 enqueues in flight). */
  enqueuedPerSecond: number;
  /** Redis process CPU (INFO cpu, user + sys) over the run, per task, µs. */
  redisCpuUsPerTask: number;
  /** Commands Redis ran per task (INFO commandstats, commands inside scripts included). */
  commandsPerTask: number;
  /** The five commands that took the most Redis time, µs per task. */
  topCommands: { name: string; perTask: number; usPerTask: number }[];
}

/** The runs of one cell (systems interleaved run by run), and their medians. */
export interface ThroughputCell extends ThroughputRun {
  system: QueueSystem['key'];
  workers: number;
  taskMs: number;
  tasks: number;
  runs: ThroughputRun[];
}

/** Medians of the runs; the commands of the run whose Redis CPU is the median. */
export function throughputCell(
  key: Pick<ThroughputCell, 'system' | 'workers' | 'taskMs' | 'tasks'>,
  runs: ThroughputRun[],
): ThroughputCell {
  const median = (f: (r: ThroughputRun) => number) => summarize(runs.map(f)).p50;
  const cpu = median((r) => r.redisCpuUsPerTask);
  return {
    ...key,
    runs,
    completed: runs.reduce((s, r) => s + r.completed, 0),
    notCompleted: mergeCounts(runs.map((r) => r.notCompleted)),
    perSecond: median((r) => r.perSecond),
    enqueuedPerSecond: median((r) => r.enqueuedPerSecond),
    redisCpuUsPerTask: cpu,
    commandsPerTask: median((r) => r.commandsPerTask),
    topCommands: runs.find((r) => r.redisCpuUsPerTask === cpu)?.topCommands ?? [],
  };
}

const PRODUCER_IN_FLIGHT = 32;

/** Enqueues `count` tasks with a bounded number in flight; returns the ids in order. */
async function enqueueMany(
  produce: (data: { t: number }) => Promise<string>,
  count: number,
  inFlight: number,
): Promise<string[]> {
  const ids: string[] = new Array(count);
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      ids[i] = await produce({ t: hrNow() });
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
  return ids;
}

/** `workers` processes drain `tasks` tasks enqueued by the benchmark as fast as it can. */
export async function throughputRun(
  context: BenchContext,
  system: QueueSystem,
  pool: WorkerProcess[],
  workers: number,
  taskMs: number,
  tasks: number,
): Promise<ThroughputRun> {
  const use = { label: 'tp', mode: { kind: 'work', taskMs } as const, report: 'progress' as const };
  return onFreshQueue(context, system, pool, workers, use, async ({ queue, used, marks, producer }) => {
    await context.redis.config('RESETSTAT');
    const cpuBefore = await redisCpuSeconds(context);
    const start = hrNow();
    await enqueueMany((data) => producer.enqueue(data), tasks, PRODUCER_IN_FLIGHT);
    const enqueued = hrNow();
    const latest = () => used.map((p, i) => p.events.slice(marks[i]).findLast((e) => e.event === 'progress'));
    const deadline = performance.now() + 60_000 + tasks * (taskMs + 5);
    let done = latest();
    // Every delivery settled, completed or not (a refused completion ends a delivery too).
    const settled = (events: typeof done) =>
      events.reduce((s, e) => s + (e?.completed ?? 0) + sumOf(e?.outcomes ?? {}), 0);
    while (settled(done) < tasks) {
      if (performance.now() > deadline) {
        const odd = used.flatMap((p, i) => p.events.slice(marks[i]).filter((e) => e.event === 'settled'));
        throw new Error(await stuck(context, system, queue, done, tasks, odd));
      }
      await sleep(20);
      done = latest();
    }
    const cpu = (await redisCpuSeconds(context)) - cpuBefore;
    const stats = commandStats(await context.redis.info('commandstats'));
    for (const name of ['info', 'config|resetstat', 'config']) stats.delete(name);
    const last = Math.max(...done.map((e) => e?.last ?? Number.NEGATIVE_INFINITY));
    const calls = [...stats.values()].reduce((s, c) => s + c.calls, 0);
    return {
      completed: done.reduce((s, e) => s + (e?.completed ?? 0), 0),
      notCompleted: mergeCounts(done.map((e) => e?.outcomes ?? {})),
      perSecond: (tasks / (last - start)) * 1000,
      enqueuedPerSecond: (tasks / (enqueued - start)) * 1000,
      redisCpuUsPerTask: (cpu * 1e6) / tasks,
      commandsPerTask: calls / tasks,
      topCommands: [...stats.entries()]
        .sort((a, b) => b[1].usec - a[1].usec)
        .slice(0, 5)
        .map(([name, c]) => ({ name, perTask: c.calls / tasks, usPerTask: c.usec / tasks })),
    };
  });
}

const sumOf = (counts: Record<string, number>) => Object.values(counts).reduce((s, n) => s + n, 0);

function mergeCounts(all: Record<string, number>[]): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const counts of all) for (const [k, n] of Object.entries(counts)) merged[k] = (merged[k] ?? 0) + n;
  return merged;
}

/** What the workers and the queue said when a throughput run did not finish. */
async function stuck(
  context: BenchContext,
  system: QueueSystem,
  queue: string,
  progress: (QueueWorkerEvent | undefined)[],
  tasks: number,
  odd: QueueWorkerEvent[],
): Promise<string> {
  const others = mergeCounts(progress.map((e) => e?.outcomes ?? {}));
  const completed = progress.reduce((s, e) => s + (e?.completed ?? 0), 0);
  let state = '';
  if (system.kind === 'understudy') {
    const q = await readQueue(context.redis, queueKeys(queue));
    state = `; the queue: depth ${q.depth}, in flight ${q.inFlight}, dead ${q.dead}, workers' in flight ${q.workers.map((w) => w.inFlight).join(' ')}`;
  }
  const which = odd.map((e) => `${e.task} ${e.outcome}`).join(', ');
  return `only ${completed} of ${tasks} tasks completed in time; other outcomes at the workers: ${JSON.stringify(others)} (${which})${state}`;
}

export interface LatencyResult {
  system: QueueSystem['key'];
  workers: number;
  /** enqueue() called → the handler starts, ms. */
  samples: number[];
}

/** Idle workers; one task at a time, every `gapMs` ± half: enqueue() → handler start. */
export async function latency(
  context: BenchContext,
  system: QueueSystem,
  pool: WorkerProcess[],
  workers: number,
  count: number,
  gapMs: number,
): Promise<LatencyResult> {
  const use = { label: 'lat', mode: { kind: 'work', taskMs: 0 } as const, report: 'each' as const };
  return onFreshQueue(context, system, pool, workers, use, async ({ used, marks, producer }) => {
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      ids.push(await producer.enqueue({ t: hrNow() }));
      await sleep(gapMs * (0.5 + Math.random()));
    }
    const starts = () => used.flatMap((p, i) => p.events.slice(marks[i]).filter((e) => e.event === 'start'));
    const deadline = performance.now() + 30_000;
    while (new Set(starts().map((e) => e.task)).size < ids.length && performance.now() < deadline) await sleep(20);
    const first = new Map<string, number>();
    for (const e of starts()) {
      if (e.task !== undefined && e.sent !== undefined && !first.has(e.task)) first.set(e.task, e.t - e.sent);
    }
    if (first.size < ids.length) throw new Error(`${system.label}: ${ids.length - first.size} tasks never started`);
    return { system: system.key, workers, samples: [...first.values()] };
  });
}
