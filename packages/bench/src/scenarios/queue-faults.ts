// Faults on the queues: a worker killed while it holds a task, and a handler that blocks its
// event loop longer than the queue waits.
import { queueKeys } from '@understudy/core';
import { Redis } from 'ioredis';
import { hrNow, mapClocks, sleep } from '../clock.js';
import type { BenchContext } from '../context.js';
import { openProducer } from '../queue/producers.js';
import type { QueueSystem } from '../queue/types.js';
import { describe, plan, queueName, spawn, type WorkerProcess } from './queue-harness.js';
import type { LatencyResult, ThroughputCell } from './queue-load.js';

/** One system's figures in the queue family. */
export interface QueueSystemResult {
  system: QueueSystem;
  throughput: ThroughputCell[];
  latency: LatencyResult | undefined;
  kills: KillRound[];
  stalls: StallRound[];
  problems: string[];
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
export async function faultRounds(
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
