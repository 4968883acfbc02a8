// A queue worker in a process of its own: an understudy queue worker or a BullMQ Worker, joined
// on command. Prints events as JSON lines with hrtime stamps (ms, comparable across processes).
// Commands on stdin, one JSON object a line: `{"join": WorkerPlan}`, `{"leave": true}`. Exits
// when stdin closes (its parent died).
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { hrNow } from '../clock.js';
import type { Emit, JoinedWorker, JoinWorker, RunTask, Settle, WorkerPlan, WorkerProcessConfig } from './types.js';

/** Loads only the library a plan names. */
const JOINERS: Record<WorkerPlan['system']['kind'], () => Promise<JoinWorker>> = {
  understudy: async () => (await import('./understudy-worker.js')).joinUnderstudy,
  bullmq: async () => (await import('./bullmq-worker.js')).joinBullmq,
};

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerProcessConfig;
const emit: Emit = (event, fields = {}) =>
  process.stdout.write(`${JSON.stringify({ t: hrNow(), event, ...fields })}\n`);
process.on('unhandledRejection', (reason) =>
  emit('error', { message: `unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}` }),
);

/** Blocks the event loop (not the CPU) for `ms`: a handler stuck in synchronous work. */
function blockEventLoop(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

let joined: JoinedWorker | undefined;
let ledger: Redis | undefined;
let progressTimer: NodeJS.Timeout | undefined;

async function join(plan: WorkerPlan): Promise<void> {
  const each = plan.report === 'each';
  let completed = 0;
  let first = Number.NaN;
  let last = Number.NaN;
  let reported = '';
  /** Deliveries that ended other than completed, by outcome. */
  const others: Record<string, number> = {};
  ledger = plan.ledgerUrl ? new Redis(plan.ledgerUrl, { enableAutoPipelining: false }) : undefined;
  const effectKey = (id: string) => `ran:${plan.queue}:${id}`;
  const effect = async (id: string) => {
    await ledger?.incr(effectKey(id));
    if (each) emit('effect', { task: id });
  };
  const mode = plan.mode;
  const run: RunTask = async (id, data, signal) => {
    const t = hrNow();
    if (Number.isNaN(first)) first = t;
    if (each) emit('start', { task: id, sent: data.t });
    if (mode.kind === 'work') {
      if (mode.taskMs > 0) await sleep(mode.taskMs);
      if (ledger) await effect(id);
    } else if (mode.kind === 'hold') {
      await sleep(mode.holdMs, undefined, signal ? { signal } : {}).catch(() => undefined);
    } else {
      blockEventLoop(mode.stallMs);
      // The next await of a real handler (here: a read of the ledger) lets overdue timers run.
      await ledger?.get(effectKey(id));
      if (mode.checkSignal && signal?.aborted) {
        emit('skipped', { task: id });
        return;
      }
      await effect(id);
    }
  };
  const settle: Settle = (id, outcome) => {
    if (outcome === 'completed') {
      completed += 1;
      last = hrNow();
    } else {
      others[outcome] = (others[outcome] ?? 0) + 1;
      // Rare, and what a run that does not finish is asked about.
      if (!each) emit('settled', { task: id, outcome });
    }
    if (each) emit('settled', { task: id, outcome });
  };
  const start = await JOINERS[plan.system.kind]();
  joined = await start(plan, config.redisUrl, run, settle, emit);
  if (!each) {
    progressTimer = setInterval(() => {
      const now = JSON.stringify([completed, others]);
      if (now === reported) return;
      reported = now;
      emit('progress', { completed, first, last, outcomes: others });
    }, 50);
  }
  emit('joined', { worker: plan.workerId });
}

async function leave(): Promise<void> {
  const leaving = joined;
  joined = undefined;
  await leaving?.leave();
  clearInterval(progressTimer);
  ledger?.disconnect();
  ledger = undefined;
  emit('left');
}

let work = Promise.resolve();
const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  work = work.then(async () => {
    try {
      const command = JSON.parse(line) as { join?: WorkerPlan; leave?: boolean };
      if (command.join && !joined) await join(command.join);
      else if (command.leave) await leave();
    } catch (error) {
      emit('error', { message: error instanceof Error ? error.message : String(error) });
    }
  });
});
input.on('close', () => process.exit(0));
emit('ready');
