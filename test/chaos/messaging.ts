// What the feed and queue scenarios do from the harness's side (test/chaos/feed.ts,
// test/chaos/queues.ts): publish and enqueue on connections of their own to whichever server
// holds the group or queue now, and read the queue's final state. Every publish and enqueue
// that returned an id is recorded in the harness's history (rules 13 and 17).
import { enqueue, publish } from '../../packages/core/src/index.js';
import { type HistoryEvent, MasterClient, type ScenarioRun, type TaskEvent } from '../../packages/testkit/src/index.js';

/** Something running in the background until `stop()`. */
export interface Background {
  /** How many publishes or enqueues returned an id. */
  readonly count: number;
  stop(): Promise<void>;
}

/**
 * Calls `once` every `everyMs` until stopped (or `limit` successes), on a harness connection
 * to the current master; a call that fails is tried no more (it is not recorded).
 */
function repeat(
  run: ScenarioRun,
  everyMs: number,
  limit: number,
  once: (redis: Awaited<ReturnType<MasterClient['get']>>) => Promise<void>,
): Background {
  const client = new MasterClient(run);
  let stopped = false;
  const state = { count: 0 };
  const loop = (async () => {
    while (!stopped && !run.signal.aborted && state.count < limit) {
      try {
        await once(await client.get());
        state.count += 1;
      } catch {
        // Redis down, frozen or moving: this one is not recorded.
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
  })();
  return {
    get count() {
      return state.count;
    },
    async stop() {
      stopped = true;
      await loop;
      client.close();
    },
  };
}

/** Publishes a message on the group's feed every `everyMs`; each that returned an id is a `publish` event. */
export function publishing(run: ScenarioRun, everyMs: number): Background {
  let n = 0;
  return repeat(run, everyMs, Number.POSITIVE_INFINITY, async (redis) => {
    const id = await publish({ redis, group: run.group }, { n: n++ });
    run.record({ type: 'publish', member: 'publisher', id });
  });
}

/** Enqueues `count` tasks (Infinity: until stopped), one every `everyMs`, each running `durationOf(i)` ms; each that returned an id is an `enqueue` event. */
export function enqueueing(
  run: ScenarioRun,
  count: number,
  everyMs: number,
  durationOf: (i: number) => number,
): Background {
  let i = 0;
  return repeat(run, everyMs, count, async (redis) => {
    const task = await enqueue({ redis, queue: run.queueName }, { ms: durationOf(i) });
    i += 1;
    run.record({ type: 'enqueue', task });
  });
}

/**
 * The ids of the tasks not completed (docs/keys.md: pending in the consumer group, or not read by
 * it yet; an acknowledged task stays in the stream until a trim) and of the dead letters, read
 * in one step. Without the group (lost state) every task in the stream waits.
 */
const READ_QUEUE = `
local waiting, dead = {}, {}
local after = '-'
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    local f = {}
    for i = 1, #g, 2 do f[g[i]] = g[i + 1] end
    if f.name == 'workers' then
      after = '(' .. f['last-delivered-id']
      for _, p in ipairs(redis.call('XPENDING', KEYS[1], 'workers', '-', '+', 1000000)) do waiting[#waiting + 1] = p[1] end
    end
  end
end
for _, e in ipairs(redis.call('XRANGE', KEYS[1], after, '+')) do waiting[#waiting + 1] = e[1] end
for _, e in ipairs(redis.call('XRANGE', KEYS[2], '-', '+')) do
  local f = e[2]
  for i = 1, #f, 2 do if f[i] == 'id' then dead[#dead + 1] = f[i + 1] end end
end
return cjson.encode({ waiting = waiting, dead = dead })
`;

async function readQueue(run: ScenarioRun): Promise<{ waiting: string[]; dead: string[] }> {
  const key = (kind: string) => `understudy:{q:${run.queueName}}:${kind}`;
  const text = await run.admin('EVAL_RO', READ_QUEUE, '2', key('tasks'), key('dead'));
  const state = JSON.parse(text) as { waiting: string[] | object; dead: string[] | object };
  return {
    waiting: Array.isArray(state.waiting) ? state.waiting : [],
    dead: Array.isArray(state.dead) ? state.dead : [],
  };
}

/**
 * The quiet period at the end of a queue scenario: waits until no task is left in the queue (or
 * `timeoutMs` passed: a criterion not met), then records the final `queue-state` (rule 17).
 */
export async function drainQueue(run: ScenarioRun, timeoutMs: number): Promise<void> {
  await run
    .untilServers(async () => (await readQueue(run)).waiting.length === 0, 'the queue to drain', timeoutMs)
    .catch((error: Error) => run.unmet(error.message));
  const state = await readQueue(run);
  run.record({ type: 'queue-state', ...state });
}

/** The deliveries each task had: its `task-start` events. */
export function deliveriesOf(history: readonly HistoryEvent[]): Map<string, TaskEvent[]> {
  const byTask = new Map<string, TaskEvent[]>();
  for (const e of history) {
    if (e.type !== 'task-start') continue;
    byTask.set(e.task, [...(byTask.get(e.task) ?? []), e]);
  }
  return byTask;
}
