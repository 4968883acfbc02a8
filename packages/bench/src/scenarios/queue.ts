// Distributed queues side by side: understudy's queue and BullMQ (default and tuned lock
// settings), on the same Redis, every worker a process of its own.
import { startRedis } from '@understudy/testkit';
import { Redis } from 'ioredis';
import { mapClocks } from '../clock.js';
import type { BenchContext } from '../context.js';
import { beginRun, type FamilyRun } from '../family.js';
import { queueSystems } from '../queue/systems.js';
import type { QueueSystem } from '../queue/types.js';
import { type QueueSettings, TARGET_WORKERS } from '../settings.js';
import { type FeedResults, runFeed } from './feed.js';
import { faultRounds, type QueueSystemResult } from './queue-faults.js';
import { describe, spawn } from './queue-harness.js';
import { callgrindAvailable, countQueueInstructions, type InstructionCount } from './queue-instructions.js';

export type { QueueSystemResult } from './queue-faults.js';

import { latency, type ThroughputRun, throughputCell, throughputRun } from './queue-load.js';

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
    // Unmeasured first, a run per system on every worker process, about warmUpTasksPerWorker
    // tasks each: the processes compile a system's code on its first tasks (one run of a few
    // hundred per process left each system's first measured runs its slowest). The runs of a
    // cell still speed up from the first to the last, for every system alike (4 workers, no-op:
    // by up to half); the systems take turns run by run, so a median compares like with like.
    const warmUp = Math.max(...settings.workerCounts);
    for (const { system } of results) {
      await throughputRun(context, system, pool, warmUp, 0, warmUp * settings.warmUpTasksPerWorker).catch(
        (error: unknown) => {
          context.progress(`queue ${system.label}: warm-up run: ${describe(error)}`);
        },
      );
    }
    // Cell by cell, the systems take turns run by run: a change in the machine's load falls on all.
    // The first of them changes every run: load that keeps rising or falling through a cell (the
    // runs of one system moved by a fifth from the first to the last) would otherwise weigh on
    // the system that always runs first.
    for (const taskMs of settings.taskMs) {
      for (const workers of settings.workerCounts) {
        const runs = new Map<QueueSystemResult, ThroughputRun[]>(results.map((r) => [r, []]));
        const tasks = taskMs === 0 ? settings.noOpTasks : settings.throughputTasks;
        const reps = workers === TARGET_WORKERS ? settings.targetRuns : settings.throughputRuns;
        for (let rep = 0; rep < reps; rep++) {
          for (const result of rotated(results, rep)) {
            const system = result.system;
            try {
              const run = await throughputRun(context, system, pool, workers, taskMs, tasks);
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
          const key = { system: result.system.key, workers, taskMs, tasks };
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

/** `list` rotated left by `by` places. */
function rotated<T>(list: readonly T[], by: number): T[] {
  const k = by % list.length;
  return [...list.slice(k), ...list.slice(0, k)];
}

export interface QueueResults {
  /** The queue family can be measured alone (`--only queue`): when, how and under what load. */
  run: FamilyRun;
  settings: QueueSettings;
  lease: { activationMs: number; heartbeatMs: number };
  systems: QueueSystemResult[];
  /** The group feed, measured on the same Redis after the queues. */
  feed: FeedResults | undefined;
  /**
   * Redis instructions per task by system (a redis-server of their own under callgrind), runs in
   * the order taken (the systems take turns); undefined where valgrind is missing or a run failed.
   */
  instructions?: { key: QueueSystem['key']; label: string; runs: InstructionCount[] }[] | undefined;
  failures: string[];
}

/** The instruction count of every system, `runs` times, the systems taking turns. */
async function countInstructions(
  systems: QueueSystem[],
  settings: QueueSettings,
  progress: (line: string) => void,
): Promise<QueueResults['instructions']> {
  if (!callgrindAvailable()) {
    progress('── instructions: valgrind (callgrind) is not installed here; not counted');
    return undefined;
  }
  progress(
    `── instructions: ${settings.instructionRuns} runs per system of ${settings.instructionTasks} tasks, 4 workers, no-op, Redis under callgrind`,
  );
  const counted = systems.map((system) => ({ key: system.key, label: system.label, runs: [] as InstructionCount[] }));
  for (let run = 1; run <= settings.instructionRuns; run++) {
    for (const [i, system] of systems.entries()) {
      const count = await countQueueInstructions(system, { tasks: settings.instructionTasks, workers: 4, taskMs: 0 });
      // (The largest command counts only: the report shows a few.)
      counted[i]?.runs.push({
        ...count,
        byCommand: count.byCommand.slice(0, 8),
        commandsPerTask: count.commandsPerTask.slice(0, 8),
      });
      progress(
        `queue ${system.label}: run ${run}: ${(count.perTask / 1000).toFixed(1)}k Redis instructions per task, ` +
          `${(count.taskWork / 1000).toFixed(1)}k without the background (${(count.backgroundPerSecond / 1e6).toFixed(2)}M per second)`,
      );
    }
  }
  return counted;
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
    instructions: undefined,
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
  try {
    results.instructions = await countInstructions(queueSystems(lease), settings, progress);
  } catch (error) {
    results.failures.push(`instruction count: ${describe(error)}`);
    progress(results.failures.at(-1) ?? '');
  }
  record.finish();
  return results;
}
