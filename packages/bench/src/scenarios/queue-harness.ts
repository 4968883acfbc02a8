// The benchmark's side of the queue workers: worker processes that join a fresh queue on
// command, and the plans they join with.
import type { BenchContext } from '../context.js';
import { Child } from '../processes.js';
import { openProducer, type Producer } from '../queue/producers.js';
import type { HandlerMode, QueueSystem, QueueWorkerEvent, WorkerPlan, WorkerProcessConfig } from '../queue/types.js';

const WORKER = new URL('../queue/worker.ts', import.meta.url).pathname;

/** A worker process: joins one queue at a time on command. */
export class WorkerProcess extends Child<QueueWorkerEvent> {
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

export async function spawn(context: BenchContext, n: number): Promise<WorkerProcess[]> {
  const processes = Array.from({ length: n }, () => new WorkerProcess(context.server.url));
  await Promise.all(processes.map((p) => p.ready()));
  return processes;
}

let queues = 0;
export function queueName(label: string): string {
  queues += 1;
  return `qbench-${label}-${process.pid}-${queues}`;
}

export function plan(
  system: QueueSystem,
  queue: string,
  workerId: string,
  mode: HandlerMode,
  report: WorkerPlan['report'],
  ledgerUrl?: string,
): WorkerPlan {
  return { system, queue, workerId, mode, report, ...(ledgerUrl ? { ledgerUrl } : {}) };
}

/** A fresh queue that the first `workers` processes of the pool joined, and its producer. */
export interface Joined {
  queue: string;
  used: WorkerProcess[];
  /** Each used process's event count before it joined. */
  marks: number[];
  producer: Producer;
}

/** Runs `work` on a fresh queue joined by the first `workers` of the pool; they leave and Redis is flushed after. */
export async function onFreshQueue<T>(
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

export function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
