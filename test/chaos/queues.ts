// The distributed queue's fault scenarios (DESIGN §11, docs/RELIABILITY.md "Messages"): queue
// workers in processes of their own (test/fixtures/queue-worker.ts) record every delivery; the
// harness enqueues tasks on its own connection and, after a quiet period, reads what is left
// and what reached the dead letters. Rules 15–17 of the history checker judge the run: a task
// in flight at one worker at a time, no accepted completion from a stale token, nothing lost.

import { queueKeys } from '../../packages/core/src/index.js';
import type {
  HistoryEvent,
  MemberProcess,
  QueueParams,
  Scenario,
  ScenarioOutcome,
  ScenarioRun,
  WorkerArgs,
} from '../../packages/testkit/src/index.js';
import { type Background, deliveriesOf, drainQueue, enqueueing } from './messaging.js';

/** No group: the scenarios' members are queue workers. Its intervals only set the harness's waits. */
const NO_GROUP = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 150,
  preparationInterval: 0,
  activationInterval: 900,
});

/** H = 150 ms and A = 900 ms as the groups'; two tasks at a time per worker. */
const QUEUE: QueueParams = Object.freeze({
  capacity: 2,
  completeTime: 1500,
  maxDeliveries: 5,
  heartbeatInterval: 150,
  activationInterval: 900,
});

/** How long the quiet period at the end may take for the queue to drain (ms). */
const DRAIN_MS = 20_000;

async function startWorkers(run: ScenarioRun, ids: readonly string[]): Promise<void> {
  await Promise.all(ids.map((id, i) => run.spawnWorker({ id, weight: 30 - 10 * i })));
}

/** Waits until a live worker reports a task starting (tasks take 20 ms or more); returns it at once. */
async function busyWorker(run: ScenarioRun): Promise<MemberProcess<WorkerArgs>> {
  const workers = run.liveWorkers();
  const before = new Map(workers.map((w) => [w, w.reported('task-start').length]));
  const started = () => workers.filter((w) => w.running && w.reported('task-start').length > (before.get(w) ?? 0));
  await run.until(() => started().length > 0, 'a worker to start a task', 10_000);
  return started()[0] as MemberProcess<WorkerArgs>;
}

/**
 * Runs `faults` while `tasks` are enqueued (an endless stream stops with the faults: a slow
 * machine never runs out of tasks in flight), then waits for the queue to drain and records its
 * final state.
 */
async function withTasks(run: ScenarioRun, tasks: Background, faults: () => Promise<void>): Promise<void> {
  try {
    await faults();
  } finally {
    await tasks.stop();
  }
  await run.healAll();
  await drainQueue(run, DRAIN_MS);
}

/** Two workers and a task every 25 ms; once a task is in flight, the server's fault (noted as `label`), then 2A more. */
async function withServerFault(run: ScenarioRun, label: string, fault: () => Promise<void>): Promise<void> {
  await startWorkers(run, ['w1', 'w2']);
  const tasks = enqueueing(run, Number.POSITIVE_INFINITY, 25, () => run.random.int(50, 300));
  await withTasks(run, tasks, async () => {
    await run.sleep(run.A);
    await busyWorker(run);
    run.note(label);
    await fault();
    await run.sleep(2 * run.A);
  });
}

const workerFaults: Scenario = {
  name: 'queue-worker-faults',
  title:
    'tasks every 25 ms over three workers: two SIGKILLed mid-task (each replaced), one SIGSTOPped mid-task past its lease',
  criteria:
    'both kills land on a worker with a task in flight; the frozen worker’s tasks go to another worker, and its own completions of them are refused',
  params: NO_GROUP,
  members: [],
  queue: QUEUE,
  async run(run) {
    await startWorkers(run, ['w1', 'w2', 'w3']);
    const tasks = enqueueing(run, Number.POSITIVE_INFINITY, 25, () => run.random.int(20, 150));
    await withTasks(run, tasks, async () => {
      for (const next of ['w4', 'w5']) {
        await run.sleep(run.A / 2);
        const victim = run.victim(await busyWorker(run));
        await run.kill(victim);
        await run.spawnWorker({ id: next, weight: 5 });
      }
      await run.sleep(run.A / 2);
      const frozen = run.victim(await busyWorker(run));
      run.note('freeze');
      await run.pause(frozen, 2 * run.A + 500);
      run.note('thaw');
    });
  },
  verify(outcome) {
    const unmet = outcome.victims
      .slice(0, 2)
      .flatMap((id) => (killedMidTask(outcome.history, id) ? [] : [`${id} had no task in flight when it was killed`]));
    const frozen = outcome.victims[2];
    const freeze = outcome.notes.get('freeze') ?? 0n;
    const moved = [...deliveriesOf(outcome.history).values()].some(
      (list) =>
        list.some((d) => d.member === frozen && d.t < freeze) && list.some((d) => d.member !== frozen && d.t > freeze),
    );
    if (!moved) unmet.push(`no task of the frozen worker ${frozen} was delivered to another worker`);
    return unmet;
  },
  measure: queueFigures,
};

/** Every fourth task takes twice completeTime: each delivery aborts, and after maxDeliveries it is a dead letter. */
const SLOW_QUEUE: QueueParams = Object.freeze({ ...QUEUE, completeTime: 400, maxDeliveries: 3 });
const SLOW_EVERY = 4;

const slowHandler: Scenario = {
  name: 'queue-slow-handler',
  title:
    'every fourth task’s handler takes twice completeTime: its signal aborts, it is re-delivered, then dead-lettered',
  criteria: 'every slow task reaches the dead letters after maxDeliveries deliveries; every other task completes',
  params: NO_GROUP,
  members: [],
  queue: SLOW_QUEUE,
  async run(run) {
    await startWorkers(run, ['w1', 'w2', 'w3']);
    const slowMs = 2 * SLOW_QUEUE.completeTime;
    const tasks = enqueueing(run, 24, 50, (i) => (i % SLOW_EVERY === 0 ? slowMs : run.random.int(10, 60)));
    await withTasks(run, tasks, async () => {
      await run.until(() => tasks.count >= 24, 'every task to be enqueued', 30_000);
    });
  },
  verify(outcome) {
    const enqueued = outcome.history.filter((e) => e.type === 'enqueue');
    const state = outcome.history.findLast((e) => e.type === 'queue-state');
    const dead = new Set(state?.type === 'queue-state' ? state.dead : []);
    const slow = enqueued.filter((_, i) => i % SLOW_EVERY === 0).map((e) => (e.type === 'enqueue' ? e.task : ''));
    const deliveries = deliveriesOf(outcome.history);
    return [
      ...slow.filter((t) => !dead.has(t)).map((t) => `slow task ${t} is not in the dead letters`),
      ...slow
        .filter((t) => (deliveries.get(t)?.length ?? 0) !== SLOW_QUEUE.maxDeliveries)
        .map((t) => `slow task ${t} had ${deliveries.get(t)?.length ?? 0} deliveries, not ${SLOW_QUEUE.maxDeliveries}`),
      ...(dead.size === slow.length ? [] : [`${dead.size} dead letters for ${slow.length} slow tasks`]),
    ];
  },
  measure: queueFigures,
};

const redisRestart: Scenario = {
  name: 'queue-redis-restart',
  title:
    'redis-server restarted (appendonly always, data kept) while tasks are in flight: the queue quarantines, then drains',
  criteria: 'tasks were in flight when Redis went down; every task completes after the restart (nothing lost)',
  params: NO_GROUP,
  members: [],
  queue: QUEUE,
  redis: { appendOnly: 'always' },
  run: (run) =>
    withServerFault(run, 'restart', async () => {
      await run.fault('restart redis-server', () => run.redis.restart({ keepData: true }));
      await run.heal('restart redis-server');
    }),
  verify: (outcome) => inFlightAt(outcome, 'restart'),
  measure: queueFigures,
};

const failover: Scenario = {
  name: 'queue-failover',
  title:
    'a replicated pair: writes paused on the master, the replica caught up and promoted while tasks are in flight, every link moved to it',
  criteria: 'tasks were in flight at the failover; every task completes on the promoted replica (nothing lost)',
  params: NO_GROUP,
  members: [],
  queue: QUEUE,
  topology: 'replicated',
  run: (run) =>
    withServerFault(run, 'failover', async () => {
      // A clean failover: nothing the master acknowledged is missing on the replica it hands over to.
      await run.fault('failover to the replica', () => run.pair.master.admin('CLIENT', 'PAUSE', '10000', 'WRITE'));
      await run.untilServers(async () => (await run.pair.lagBytes()) === 0, 'the replica to catch up', 5000);
      await run.promoteReplica();
      await run.heal('failover to the replica');
    }),
  verify: (outcome) => inFlightAt(outcome, 'failover'),
  measure: queueFigures,
};

/**
 * What a lost-key round may DEL, and a stale-key round restore from an older copy: a key of the
 * queue (not the tasks stream, whose loss is the loss of the tasks themselves), or a live worker's
 * inbox.
 */
const QUEUE_LOSABLE = ['config', 'workers', 'leases', 'order', 'deliveries', 'deadlines', 'inbox'] as const;
const QUEUE_LOST_KEY_ROUNDS = 3;

/**
 * Tasks every 25 ms over two workers; `rounds` times, once a worker has a task in flight, `fault`
 * acts on a random one of QUEUE_LOSABLE (that worker's inbox for `inbox`), named `name`; 2A apart.
 */
async function onQueueKeys(
  run: ScenarioRun,
  rounds: number,
  fault: (key: string, name: string, round: number) => Promise<void>,
): Promise<void> {
  await startWorkers(run, ['w1', 'w2']);
  const keys = queueKeys(run.queueName);
  const tasks = enqueueing(run, Number.POSITIVE_INFINITY, 25, () => run.random.int(50, 300));
  await withTasks(run, tasks, async () => {
    await run.sleep(run.A);
    for (let round = 1; round <= rounds; round++) {
      const busy = await busyWorker(run);
      const kind = run.random.pick(QUEUE_LOSABLE);
      await fault(
        kind === 'inbox' ? keys.inbox(busy.id) : keys[kind],
        kind === 'inbox' ? `the inbox of ${busy.id}` : kind,
        round,
      );
      await run.sleep(2 * run.A);
    }
  });
}

/**
 * A key of the queue DELeted while tasks are in flight (an operator's DEL, an eviction): the
 * scripts must find the loss before they dispatch on it (S6 for queues: quarantine, rebuild, the
 * workers' claims taken back into the records) and lose no task. It tries the one-command key
 * check of a completion (all five keys there, else the counts), the flag that says a task waits
 * for re-delivery (lost with the config), and the rebuild that hands tasks back.
 */
const lostKey: Scenario = {
  name: 'queue-lost-key',
  title: `tasks every 25 ms over two workers; a random key of the queue (not the tasks stream) or a worker's inbox DELeted while tasks are in flight, ${QUEUE_LOST_KEY_ROUNDS} times`,
  criteria: 'a task was in flight at each DEL; every task completes or reaches the dead letters (nothing lost)',
  params: NO_GROUP,
  members: [],
  queue: QUEUE,
  run: (run) =>
    onQueueKeys(run, QUEUE_LOST_KEY_ROUNDS, async (key, name, round) => {
      const description = `DEL ${name} (${round})`;
      run.note(`del-${round}`);
      await run.fault(description, () => run.admin('DEL', key));
      await run.heal(description);
    }),
  verify: (outcome) =>
    Array.from({ length: QUEUE_LOST_KEY_ROUNDS }, (_, i) => inFlightAt(outcome, `del-${i + 1}`)).flat(),
  measure: queueFigures,
};

const QUEUE_STALE_KEY_ROUNDS = 3;

/**
 * A key of the queue put back as it was a moment before, while tasks flow (an operator restoring a
 * backup of it, a tool copying it back): a copy (COPY, beside it under the same hash tag), tasks
 * delivered, completed and re-delivered for 0.3–1.5 A, then the copy replaces the key. What it says
 * no longer agrees with the rest: a delivery record naming a worker the task was since taken from
 * (F-Q3), counts of tasks in flight, leases that end earlier (F-Q4). S6 for queues: a completion
 * is accepted only from the worker the consumer group says holds the task, counts follow the
 * group, a lease is put back from the worker's record, and nothing is lost.
 */
const staleKey: Scenario = {
  name: 'queue-stale-key',
  title: `tasks every 25 ms over two workers; a random key of the queue (not the tasks stream) or a worker's inbox restored from a copy taken 0.3–1.5 A before, ${QUEUE_STALE_KEY_ROUNDS} times`,
  criteria: 'a task was in flight at each restore; every task completes or reaches the dead letters (nothing lost)',
  params: NO_GROUP,
  members: [],
  queue: QUEUE,
  run: (run) =>
    onQueueKeys(run, QUEUE_STALE_KEY_ROUNDS, async (key, name, round) => {
      const copy = `${key}:older`;
      await run.admin('COPY', key, copy, 'REPLACE');
      await run.sleep(run.random.between(0.3, 1.5) * run.A);
      const description = `${name} restored from the copy (${round})`;
      run.note(`restore-${round}`);
      await run.fault(description, async () => {
        // (A key that did not exist at the copy: none to restore, it is deleted.)
        if (Number(await run.admin('COPY', copy, key, 'REPLACE')) === 0) await run.admin('DEL', key);
        await run.admin('DEL', copy);
      });
      await run.heal(description);
    }),
  verify: (outcome) =>
    Array.from({ length: QUEUE_STALE_KEY_ROUNDS }, (_, i) => inFlightAt(outcome, `restore-${i + 1}`)).flat(),
  measure: queueFigures,
};

function killedMidTask(history: readonly HistoryEvent[], worker: string): boolean {
  const open = new Set<string>();
  for (const e of history) {
    if (e.member !== worker) continue;
    if (e.type === 'task-start') open.add(`${e.task}/${e.token}`);
    if (e.type === 'task-end' || e.type === 'task-done' || e.type === 'task-abort') open.delete(`${e.task}/${e.token}`);
    if (e.type === 'killed') return open.size > 0;
  }
  return false;
}

function inFlightAt(outcome: ScenarioOutcome, label: string): string[] {
  const at = outcome.notes.get(label);
  if (at === undefined) return [`the scenario never noted '${label}'`];
  const started = outcome.history.filter((e) => e.type === 'task-start' && e.t < at);
  const ended = new Set(
    outcome.history.flatMap((e) => (e.type === 'task-end' && e.t < at ? [`${e.member}/${e.task}/${e.token}`] : [])),
  );
  const open = started.filter((e) => e.type === 'task-start' && !ended.has(`${e.member}/${e.task}/${e.token}`));
  return open.length > 0 ? [] : [`no task was in flight at the ${label}`];
}

/** Tasks enqueued, completed, dead-lettered, and how many deliveries were re-deliveries. */
function queueFigures(outcome: ScenarioOutcome): Record<string, number> {
  const { history } = outcome;
  const deliveries = [...deliveriesOf(history).values()];
  const state = history.findLast((e) => e.type === 'queue-state');
  return {
    enqueued: history.filter((e) => e.type === 'enqueue').length,
    completed: history.filter((e) => e.type === 'task-end' && e.outcome === 'completed').length,
    stale: history.filter((e) => e.type === 'task-end' && e.outcome === 'stale').length,
    redelivered: deliveries.reduce((n, list) => n + list.length - 1, 0),
    dead: state?.type === 'queue-state' ? state.dead.length : 0,
  };
}

export const QUEUE_SCENARIOS: readonly Scenario[] = [
  workerFaults,
  slowHandler,
  redisRestart,
  failover,
  lostKey,
  staleKey,
];
