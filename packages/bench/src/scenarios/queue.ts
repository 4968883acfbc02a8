// Distributed queues side by side: understudy's queue and BullMQ (default and tuned lock
// settings), on the same Redis, every worker a process of its own.

import { queueKeys, readQueue } from '@understudy/core';
import { startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { hrNow, mapClocks, sleep } from '../clock.js';
import type { BenchContext } from '../context.js';
import { beginRun, type FamilyRun } from '../family.js';
import { Child } from '../processes.js';
import { openProducer, type Producer } from '../queue/producers.js';
import { queueSystems } from '../queue/systems.js';
import type { HandlerMode, QueueSystem, QueueWorkerEvent, WorkerPlan, WorkerProcessConfig } from '../queue/types.js';
import type { QueueSettings } from '../settings.js';
import { summarize } from '../stats.js';
import { commandStats, redisCpuSeconds } from './cost.js';
import { type FeedResults, runFeed } from './feed.js';

const WORKER = new URL('../queue/worker.ts', import.meta.url).pathname;

/** A worker process: joins one queue at a time on command. */
class WorkerProcess extends Child<QueueWorkerEvent> {
  constructor(redisUrl: string) {
    const config: WorkerProcessConfig = { redisUrl };
    super(WORKER, config);
  }

  ready(): Promise<QueueWorkerEvent> {
    return this.waitFor((e) => e.event === 'ready', 'a queue worker process to start', 60_000);
  }

  async join(plan: WorkerPlan): Promise<void> {
    const from = this.events.length;
    this.send(JSON.stringify({ join: plan }));
    const joined = await this.waitFor(
      (e) => e.event === 'joined' || e.event === 'error',
      `${plan.workerId} to join ${plan.queue}`,
      30_000,
      from,
    );
    if (joined.event === 'error') throw new Error(`${plan.workerId} could not join ${plan.queue}: ${joined.message}`);
  }

  async leave(): Promise<void> {
    const from = this.events.length;
    this.send(JSON.stringify({ leave: true }));
    await this.waitFor((e) => e.event === 'left', 'a queue worker to leave', 60_000, from);
  }

  /** Events since `from` about one task. */
  about(task: string, event: QueueWorkerEvent['event'], from = 0): QueueWorkerEvent[] {
    return this.events.slice(from).filter((e) => e.event === event && e.task === task);
  }
}

async function spawn(context: BenchContext, n: number): Promise<WorkerProcess[]> {
  const processes = Array.from({ length: n }, () => new WorkerProcess(context.server.url));
  await Promise.all(processes.map((p) => p.ready()));
  return processes;
}

let queues = 0;
function queueName(label: string): string {
  queues += 1;
  return `qbench-${label}-${process.pid}-${queues}`;
}

function plan(
  system: QueueSystem,
  queue: string,
  workerId: string,
  mode: HandlerMode,
  report: WorkerPlan['report'],
  ledgerUrl?: string,
): WorkerPlan {
  return { system, queue, workerId, mode, report, ...(ledgerUrl ? { ledgerUrl } : {}) };
}

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
function throughputCell(
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

/** A fresh queue that the first `workers` processes of the pool joined, and its producer. */
interface Joined {
  queue: string;
  used: WorkerProcess[];
  /** Each used process's event count before it joined. */
  marks: number[];
  producer: Producer;
}

/** Runs `work` on a fresh queue joined by the first `workers` of the pool; they leave and Redis is flushed after. */
async function onFreshQueue<T>(
  context: BenchContext,
  system: QueueSystem,
  pool: WorkerProcess[],
  workers: number,
  use: { label: string; mode: HandlerMode; report: WorkerPlan['report'] },
  work: (joined: Joined) => Promise<T>,
): Promise<T> {
  const queue = queueName(`${use.label}-${system.key}`);
  const used = pool.slice(0, workers);
  const marks = used.map((p) => p.events.length);
  const producer = await openProducer(system, context.server.url, queue);
  try {
    await Promise.all(used.map((p, i) => p.join(plan(system, queue, `w${i}`, use.mode, use.report))));
    return await work({ queue, used, marks, producer });
  } finally {
    await Promise.all(used.map((p) => p.leave()));
    await producer.close();
    await context.redis.flushall();
  }
}

/** `workers` processes drain `tasks` tasks enqueued by the benchmark as fast as it can. */
async function throughputRun(
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
async function latency(
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

export interface KillRound {
  /** SIGKILL of the worker running the task → the task starts at the other worker, ms. */
  redeliveryMs: number | undefined;
  /**
   * The task started this long after the dead worker's lease (understudy: its `leases` score)
   * or the task's lock (BullMQ: the lock key's PTTL) ran out, ms; read right after the kill.
   */
  overshootMs: number | undefined;
  /** The kill came this long after the task started at the killed worker, ms. */
  killAfterMs: number;
}

const HOLD_MS = 300_000;

/** Two fresh worker processes for one round (stopped after it: no state carries over). */
async function withPair<T>(
  context: BenchContext,
  round: (a: WorkerProcess, b: WorkerProcess) => Promise<T>,
): Promise<T> {
  const pair = await spawn(context, 2);
  const [a, b] = pair;
  if (!a || !b) throw new Error('no worker processes');
  try {
    return await round(a, b);
  } finally {
    await Promise.all(pair.map((p) => p.kill('SIGKILL')));
  }
}

/** When the dead holder's claim on the task runs out, on hrNow(): understudy's lease, BullMQ's lock. */
async function claimDeadline(
  context: BenchContext,
  system: QueueSystem,
  queue: string,
  task: string,
  worker: string,
): Promise<number | undefined> {
  if (system.kind === 'understudy') {
    const clocks = await mapClocks(context.redis, 5);
    const score = await context.redis.zscore(queueKeys(queue).leases, worker);
    return score === null ? undefined : clocks.fromRedis(Number(score));
  }
  const before = hrNow();
  const pttl = await context.redis.pttl(`bull:${queue}:${task}:lock`);
  return pttl < 0 ? undefined : (before + hrNow()) / 2 + pttl;
}

/**
 * One worker holds a task (awaits, the event loop free); a second, idle worker is there to take
 * it; the holder gets SIGKILL at a random moment; time until the task starts at the second.
 */
function killRound(context: BenchContext, system: QueueSystem): Promise<KillRound> {
  return withPair(context, async (holder, rescuer) => {
    const queue = queueName(`kill-${system.key}`);
    const producer = await openProducer(system, context.server.url, queue);
    try {
      await holder.join(plan(system, queue, 'holder', { kind: 'hold', holdMs: HOLD_MS }, 'each'));
      const id = await producer.enqueue({ t: hrNow() });
      const started = await holder.waitFor((e) => e.event === 'start' && e.task === id, 'the holder to start');
      await rescuer.join(plan(system, queue, 'rescuer', { kind: 'work', taskMs: 0 }, 'each'));
      // A random phase of the holder's renewals (understudy H, BullMQ lockRenewTime).
      await sleep(200 + Math.random() * 800);
      const killed = await holder.kill('SIGKILL');
      const deadline = await claimDeadline(context, system, queue, id, 'holder');
      const again = await rescuer
        .waitFor(
          (e) => e.event === 'start' && e.task === id,
          'the task to start again',
          system.redeliveryBoundMs + 10_000,
        )
        .catch(() => undefined);
      return {
        redeliveryMs: again ? again.t - killed : undefined,
        overshootMs: again && deadline !== undefined ? again.t - deadline : undefined,
        killAfterMs: killed - started.t,
      };
    } finally {
      await producer.close();
    }
  });
}

export interface StallRound {
  checkSignal: boolean;
  stallMs: number;
  /** The task started at the second worker while the first was blocked: after how long, ms. */
  redeliveryMs: number | undefined;
  /** How many times the task's side effect ran (a counter in another Redis). */
  effects: number;
  /** What the queue made of the stalled worker's completion, and of the second worker's. */
  staleOutcome: string;
  rescuerOutcome: string;
}

/**
 * A handler blocks its event loop longer than the system waits before delivering the task
 * again; a second worker is idle. How often does the task's side effect run?
 */
function stallRound(
  context: BenchContext,
  system: QueueSystem,
  ledgerUrl: string,
  checkSignal: boolean,
): Promise<StallRound> {
  return withPair(context, async (staller, rescuer) => {
    const queue = queueName(`stall-${system.key}`);
    const producer = await openProducer(system, context.server.url, queue);
    const stallMs = system.redeliveryBoundMs + 1000;
    try {
      await staller.join(plan(system, queue, 'staller', { kind: 'stall', stallMs, checkSignal }, 'each', ledgerUrl));
      const id = await producer.enqueue({ t: hrNow() });
      const started = await staller.waitFor((e) => e.event === 'start' && e.task === id, 'the staller to start');
      await rescuer.join(plan(system, queue, 'rescuer', { kind: 'work', taskMs: 0 }, 'each', ledgerUrl));
      const again = await rescuer
        .waitFor((e) => e.event === 'start' && e.task === id, 'the task to start again', stallMs + 5000)
        .catch(() => undefined);
      // The stalled handler ends (side effect or not); give the queue's verdict a moment to arrive.
      await staller.waitFor(
        (e) => (e.event === 'effect' || e.event === 'skipped') && e.task === id,
        'the stalled handler to end',
        stallMs + 10_000,
      );
      const verdictBy = performance.now() + 3000;
      while (staller.about(id, 'settled').length === 0 && performance.now() < verdictBy) await sleep(20);
      if (again) {
        await rescuer
          .waitFor((e) => e.event === 'settled' && e.task === id, 'the second worker to complete', 10_000)
          .catch(() => undefined);
      }
      // The queue's verdicts; without one, the errors the worker reported (ids taken out, so that
      // rounds compare).
      const taskId = new RegExp(`\\b${id.replace(/[^\w]/g, '\\$&')}\\b`, 'g');
      const outcome = (p: WorkerProcess) => {
        const settled = p.about(id, 'settled').map((e) => e.outcome ?? '');
        if (settled.length) return settled.join('; ');
        const errors = p.events
          .filter((e) => e.event === 'error')
          .map((e) => `error: ${(e.message ?? '').replaceAll(queue, '<queue>').replace(taskId, '<task>')}`);
        return [...new Set(errors)].join('; ') || 'none';
      };
      const ledger = new Redis(ledgerUrl);
      const effects = Number((await ledger.get(`ran:${queue}:${id}`)) ?? 0);
      ledger.disconnect();
      return {
        checkSignal,
        stallMs,
        redeliveryMs: again ? again.t - started.t : undefined,
        effects,
        staleOutcome: outcome(staller),
        rescuerOutcome: again ? outcome(rescuer) : 'not delivered again',
      };
    } finally {
      await producer.close();
    }
  });
}

export interface QueueSystemResult {
  system: QueueSystem;
  throughput: ThroughputCell[];
  latency: LatencyResult | undefined;
  kills: KillRound[];
  stalls: StallRound[];
  problems: string[];
}

/** Kill rounds, each on a fresh queue with fresh processes. */
async function killLane(context: BenchContext, result: QueueSystemResult, rounds: number): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const round = await killRound(context, result.system);
    result.kills.push(round);
    context.progress(
      `queue ${result.system.label}: kill ${r + 1}/${rounds}: ${round.redeliveryMs === undefined ? 'never delivered again' : `${round.redeliveryMs.toFixed(1)} ms`}`,
    );
  }
}

/** Stall rounds with one kind of handler, each on a fresh queue with fresh processes. */
async function stallLane(
  context: BenchContext,
  result: QueueSystemResult,
  rounds: number,
  ledgerUrl: string,
  checkSignal: boolean,
): Promise<void> {
  for (let r = 0; r < rounds; r++) {
    const round = await stallRound(context, result.system, ledgerUrl, checkSignal);
    result.stalls.push(round);
    context.progress(
      `queue ${result.system.label}: stall, handler ${checkSignal ? 'checks' : 'ignores'} its signal, ${r + 1}/${rounds}: ` +
        `side effect ran ${round.effects}×; late completion: ${round.staleOutcome}`,
    );
  }
}

/** Kill and stall rounds of one system: one lane after the other, or all at once (`together`). */
async function faultRounds(
  context: BenchContext,
  result: QueueSystemResult,
  rounds: number,
  ledgerUrl: string,
  together: boolean,
): Promise<void> {
  const lanes = [
    () => killLane(context, result, rounds),
    () => stallLane(context, result, rounds, ledgerUrl, false),
    () => stallLane(context, result, rounds, ledgerUrl, true),
  ];
  const run = async (lane: () => Promise<void>) => {
    try {
      await lane();
    } catch (error) {
      result.problems.push(`kill / stall rounds: ${describe(error)}`);
      context.progress(`queue ${result.system.label}: ${result.problems.at(-1)}`);
    }
  };
  if (together) await Promise.all(lanes.map(run));
  else for (const lane of lanes) await run(lane);
}

/** Runs the whole family; `systems` in order, the same Redis for all. */
export async function runQueueFamily(
  context: BenchContext,
  systems: readonly QueueSystem[],
  settings: QueueSettings,
  ledgerUrl: string,
): Promise<QueueSystemResult[]> {
  const results: QueueSystemResult[] = systems.map((system) => ({
    system,
    throughput: [],
    latency: undefined,
    kills: [],
    stalls: [],
    problems: [],
  }));
  const most = Math.max(...settings.workerCounts, settings.latencyWorkers);
  context.progress(`queue: starting ${most} worker processes`);
  const pool = await spawn(context, most);
  try {
    // Cell by cell, the systems take turns run by run: a change in the machine's load falls on all.
    for (const taskMs of settings.taskMs) {
      for (const workers of settings.workerCounts) {
        const runs = new Map<QueueSystemResult, ThroughputRun[]>(results.map((r) => [r, []]));
        for (let rep = 0; rep < settings.throughputRuns; rep++) {
          for (const result of results) {
            const system = result.system;
            try {
              const run = await throughputRun(context, system, pool, workers, taskMs, settings.throughputTasks);
              runs.get(result)?.push(run);
              context.progress(
                `queue ${system.label}: ${workers} workers, ${taskMs} ms tasks, run ${rep + 1}: ${run.perSecond.toFixed(0)} tasks/s, ` +
                  `Redis ${run.redisCpuUsPerTask.toFixed(1)} µs CPU and ${run.commandsPerTask.toFixed(1)} commands per task`,
              );
            } catch (error) {
              result.problems.push(`throughput, ${workers} workers, ${taskMs} ms tasks: ${describe(error)}`);
              context.progress(`queue ${system.label}: ${result.problems.at(-1)}`);
            }
          }
        }
        for (const [result, list] of runs) {
          if (!list.length) continue;
          const key = { system: result.system.key, workers, taskMs, tasks: settings.throughputTasks };
          result.throughput.push(throughputCell(key, list));
        }
      }
    }
    for (const result of results) {
      const system = result.system;
      try {
        result.latency = await latency(
          context,
          system,
          pool,
          settings.latencyWorkers,
          settings.latencyTasks,
          settings.latencyGapMs,
        );
        context.progress(`queue ${system.label}: ${settings.latencyTasks} enqueue → start samples`);
      } catch (error) {
        result.problems.push(`latency: ${describe(error)}`);
      }
    }
  } finally {
    await Promise.all(pool.map((p) => p.stop()));
  }
  // Systems whose re-delivery takes about a minute (BullMQ's defaults) run their rounds all at
  // once and beside the others': their processes sit idle or blocked (Atomics.wait), using no CPU.
  const slow = results.filter((r) => r.system.redeliveryBoundMs > 10_000);
  const fast = results.filter((r) => r.system.redeliveryBoundMs <= 10_000);
  await Promise.all([
    ...slow.map((r) => faultRounds(context, r, settings.slowRounds, ledgerUrl, true)),
    (async () => {
      for (const r of fast) await faultRounds(context, r, settings.faultRounds, ledgerUrl, false);
    })(),
  ]);
  await context.redis.flushall();
  return results;
}

export interface QueueResults {
  /** The queue family can be measured alone (`--only queue`): when, how and under what load. */
  run: FamilyRun;
  settings: QueueSettings;
  lease: { activationMs: number; heartbeatMs: number };
  systems: QueueSystemResult[];
  /** The group feed, measured on the same Redis after the queues. */
  feed: FeedResults | undefined;
  failures: string[];
}

/**
 * The queue family on a Redis of its own (and a second one for the side-effect ledger), both
 * started here: understudy's queue, then BullMQ tuned, then BullMQ with its defaults; then the
 * group feed on the same Redis.
 */
export async function runQueueSuite(
  settings: QueueSettings,
  lease: { activationMs: number; heartbeatMs: number },
  run: { command: string; revision: string },
  progress: (line: string) => void,
): Promise<QueueResults> {
  const record = beginRun(run);
  const results: QueueResults = {
    run: record.run,
    settings,
    lease,
    systems: [],
    feed: undefined,
    failures: [],
  };
  const server = await startRedis();
  const ledger = await startRedis();
  const redis = new Redis(server.url, { connectionName: 'bench-queue' });
  try {
    const context: BenchContext = {
      server,
      redis,
      clocks: await mapClocks(redis),
      lease,
      etcdHosts: undefined,
      progress,
    };
    results.systems = await runQueueFamily(context, queueSystems(lease), settings, ledger.url);
    progress(
      `── feed: ${settings.feed.members} members, ${settings.feed.messages} messages, ${settings.feed.failovers} failovers`,
    );
    const publisher = new Redis(server.url, { enableAutoPipelining: false, connectionName: 'bench-publisher' });
    try {
      results.feed = await runFeed(context, publisher, settings.feed);
    } finally {
      publisher.disconnect();
    }
  } catch (error) {
    results.failures.push(`queue family: ${describe(error)}`);
    progress(results.failures.at(-1) ?? '');
  } finally {
    redis.disconnect();
    await ledger.stop();
    await server.stop();
  }
  record.finish();
  return results;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
