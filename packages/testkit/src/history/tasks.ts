import { violation } from './format.js';
import type { Timeline } from './timeline.js';
import type { HistoryEvent, QueueStateEvent, TaskEndEvent, TaskEvent, Violation } from './types.js';

/** One delivery of a task at one worker, as its events tell it. */
interface Delivery {
  task: string;
  token: bigint;
  worker: string;
  start: TaskEvent;
  /** The first of: its signal aborted, its handler resolved, its delivery ended, its worker was killed. */
  out: HistoryEvent | undefined;
  done: TaskEvent | undefined;
  end: TaskEndEvent | undefined;
}

function deliveries(timeline: Timeline): Map<string, Delivery[]> {
  const byTask = new Map<string, Delivery[]>();
  const open = new Map<string, Delivery>();
  const key = (worker: string, task: string, token: string) => `${worker}\u0000${task}\u0000${token}`;
  for (const event of timeline.events) {
    if (event.type === 'killed') {
      for (const d of open.values()) if (d.worker === event.member) d.out ??= event;
      continue;
    }
    if (!event.type.startsWith('task-')) continue;
    const e = event as TaskEvent | TaskEndEvent;
    const k = key(e.member, e.task, e.token);
    if (e.type === 'task-start') {
      const d: Delivery = {
        task: e.task,
        token: BigInt(e.token),
        worker: e.member,
        start: e,
        out: undefined,
        done: undefined,
        end: undefined,
      };
      open.set(k, d);
      const list = byTask.get(e.task) ?? [];
      list.push(d);
      byTask.set(e.task, list);
      continue;
    }
    const d = open.get(k);
    if (!d) continue;
    if (e.type === 'task-abort' || e.type === 'task-done') d.out ??= e;
    if (e.type === 'task-done') d.done ??= e;
    if (e.type === 'task-end') {
      d.out ??= e;
      d.end = e;
    }
  }
  return byTask;
}

/** When the harness froze `worker` (SIGSTOP … SIGCONT), as [from, to] pairs. */
function frozen(timeline: Timeline, worker: string): [bigint, bigint | undefined][] {
  const spans: [bigint, bigint | undefined][] = [];
  const prefix = `SIGSTOP ${worker} `;
  for (const event of timeline.events) {
    if ((event.type !== 'fault' && event.type !== 'heal') || !event.fault.startsWith(prefix)) continue;
    if (event.type === 'fault') spans.push([event.t, undefined]);
    else {
      const last = spans.at(-1);
      if (last && last[1] === undefined) last[1] = event.t;
    }
  }
  return spans;
}

/**
 * Rule 15 (DESIGN §11): a task is in flight at one worker at a time. A delivery is in flight
 * from its `task-start` until the first of its signal aborting, its handler resolving, its
 * `task-end`, or its worker's `killed`. When a later delivery of the task (a higher token)
 * starts, every earlier one must be out of flight — except at a worker the harness froze
 * (SIGSTOP) between the earlier delivery's start and the later one's: a frozen process cannot
 * run its abort timer (DESIGN S1(b), the event loop's margin, is broken on purpose); there
 * rule 16 must hold, its completion refused. Each delivery also takes no step (`task-step`)
 * after a later delivery started, unless it was frozen so.
 */
export function checkOneWorkerAtATime(timeline: Timeline): Violation[] {
  const violations: Violation[] = [];
  for (const list of deliveries(timeline).values()) {
    for (const later of list) {
      for (const earlier of list) {
        if (earlier.token >= later.token) continue;
        const t2 = later.start.t;
        if (earlier.start.t > t2) continue;
        const wasFrozen = frozen(timeline, earlier.worker).some(
          ([from, to]) => from <= t2 && (to ?? t2) >= earlier.start.t,
        );
        if (wasFrozen) continue;
        if (!earlier.out || earlier.out.t > t2) {
          violations.push(
            violation(
              15,
              `task ${later.task} was delivered to ${later.worker} (token ${later.token}) while ${earlier.worker}'s delivery (token ${earlier.token}) was still in flight`,
              [earlier.start, later.start, ...(earlier.out ? [earlier.out] : [])],
              timeline,
            ),
          );
          continue;
        }
        const step = timeline.events.find(
          (e) =>
            e.type === 'task-step' &&
            e.member === earlier.worker &&
            e.task === earlier.task &&
            BigInt(e.token) === earlier.token &&
            e.t > t2,
        );
        if (step) {
          violations.push(
            violation(
              15,
              `${earlier.worker} acted on task ${earlier.task} (token ${earlier.token}) after it was delivered to ${later.worker} (token ${later.token})`,
              [earlier.start, later.start, step],
              timeline,
            ),
          );
        }
      }
    }
  }
  return violations;
}

/**
 * Rule 16 (DESIGN §11): no accepted completion from a stale token. A completion the queue
 * accepted (`task-end` completed) was sent after its handler resolved (`task-done`); if a
 * later delivery of the task (a higher token) had started by then, its token was stale and
 * the queue must have refused it. And at most one completion per task is accepted.
 */
export function checkNoStaleCompletion(timeline: Timeline): Violation[] {
  const violations: Violation[] = [];
  for (const list of deliveries(timeline).values()) {
    const completed = list.filter((d) => d.end?.outcome === 'completed');
    for (const d of completed) {
      const sentAfter = d.done ?? d.end;
      const newer = list.find((other) => other.token > d.token && sentAfter && other.start.t < sentAfter.t);
      if (newer) {
        violations.push(
          violation(
            16,
            `${d.worker}'s completion of task ${d.task} with token ${d.token} was accepted although token ${newer.token} had been delivered to ${newer.worker} before it was sent`,
            [d.start, newer.start, ...(d.done ? [d.done] : []), d.end as TaskEndEvent],
            timeline,
          ),
        );
      }
    }
    if (completed.length > 1) {
      violations.push(
        violation(
          16,
          `task ${completed[0]?.task} had ${completed.length} completions accepted`,
          completed.map((d) => d.end as TaskEndEvent),
          timeline,
        ),
      );
    }
  }
  return violations;
}

/**
 * Rule 17 (DESIGN §11): every enqueued task completes or reaches the dead letters, judged on
 * the last `queue-state` (read at the end, after the quiet period). A task counts as completed
 * when a completion was accepted (`task-end` completed); or when its handler resolved at a
 * worker killed before it could record the outcome, or whose completion went unconfirmed, and
 * the task is no longer in the queue (not pending in the consumer group nor unread by it: only an
 * accepted completion acknowledges it). A history with enqueued tasks and no `queue-state` cannot
 * be judged: that is a violation too.
 */
export function checkNothingLost(timeline: Timeline): Violation[] {
  const enqueued = timeline.events.filter((e) => e.type === 'enqueue');
  if (enqueued.length === 0) return [];
  const state = timeline.events.findLast((e): e is QueueStateEvent => e.type === 'queue-state');
  if (!state) return [violation(17, 'tasks were enqueued but the queue was never read at the end', [], timeline)];
  const byTask = deliveries(timeline);
  const dead = new Set(state.dead);
  const waiting = new Set(state.waiting);
  const violations: Violation[] = [];
  for (const event of enqueued) {
    const list = byTask.get(event.task) ?? [];
    if (dead.has(event.task) || list.some((d) => d.end?.outcome === 'completed')) continue;
    // The handler resolved and the outcome is unknown to the worker: it was killed before it
    // could record one, or its completion went unconfirmed (no reply in time). The stream decides.
    const unknown = list.some(
      (d) =>
        d.done &&
        (d.end?.outcome === 'unconfirmed' || (!d.end && d.out?.type !== 'task-end' && killedAfter(timeline, d))),
    );
    if (unknown && !waiting.has(event.task)) continue;
    violations.push(
      violation(
        17,
        `task ${event.task} neither completed nor reached the dead letters${waiting.has(event.task) ? ' (still in the queue)' : ''}`,
        [event, state, ...list.map((d) => d.start)],
        timeline,
      ),
    );
  }
  return violations;
}

function killedAfter(timeline: Timeline, d: Delivery): boolean {
  const done = d.done;
  return (
    done !== undefined && timeline.events.some((e) => e.type === 'killed' && e.member === d.worker && e.t >= done.t)
  );
}
