import { ms, offset, violation } from './format.js';
import type { Timeline } from './timeline.js';
import type { RedisStateEvent, ResendEvent, Violation } from './types.js';

/**
 * Rule 10 (S5): the lease connection never queues a script while disconnected and never
 * resends one after a reconnect: a request handed to the connection a second time (`resend`)
 * may run long after its member gave it up. One violation per member: its first, and how many.
 */
export function checkNoResend(timeline: Timeline): Violation[] {
  const found = new Map<string, { first: ResendEvent; count: number }>();
  for (const event of timeline.events) {
    if (event.type !== 'resend') continue;
    const known = found.get(event.member);
    if (known) known.count += 1;
    else found.set(event.member, { first: event, count: 1 });
  }
  return [...found.values()].map(({ first, count }) =>
    violation(
      10,
      `${first.member} sent a script request again at ${offset(first.t - timeline.start)}, ` +
        `${ms(first.t - first.firstSentAt)} ms after it first handed it to its connection (${count} such request(s))`,
      [first],
      timeline,
    ),
  );
}

/**
 * Rule 11: what Redis holds, read by an administrator while the run goes on (`redis-state`).
 * Every slot's index is below the goal and there are no more slots, active or releasing, than
 * the goal (a releasing slot is still held: its holder has not stopped); against the highest
 * goal seen so far, since a goal lowered at run time leaves slots above the new one until their
 * holders release them. Every slot holder has a member record — except during a fault and
 * the settling time after it, since a fault may delete keys that the next script repairs.
 * Consecutive snapshots with the same problems are one violation.
 */
export function checkRedisState(timeline: Timeline, settleNs: bigint): Violation[] {
  const violations: Violation[] = [];
  let highestGoal = 0;
  let episode: { problems: string; events: RedisStateEvent[] } | undefined;
  const close = () => {
    if (!episode) return;
    const [first] = episode.events;
    const last = episode.events.at(-1) as RedisStateEvent;
    const lasted = first === last ? '' : ` (for ${ms(last.t - (first as RedisStateEvent).t)} ms)`;
    violations.push(violation(11, `${episode.problems}${lasted}`, [first, last] as RedisStateEvent[], timeline));
    episode = undefined;
  };
  for (const event of timeline.events) {
    if (event.type !== 'redis-state' || event.goal === 0) continue;
    highestGoal = Math.max(highestGoal, event.goal);
    const problems = problemsOf(event, highestGoal, !timeline.faultDuring(event.t - settleNs, event.t));
    if (problems === episode?.problems) {
      episode.events.push(event);
      continue;
    }
    close();
    if (problems !== '') episode = { problems, events: [event] };
  }
  close();
  return violations;
}

function problemsOf(state: RedisStateEvent, goal: number, judgeRecords: boolean): string {
  const problems: string[] = [];
  const releasing = state.slots.filter((s) => s.state === 'releasing').length;
  if (state.slots.length > goal) {
    problems.push(
      `Redis held ${state.slots.length} slots (${state.slots.length - releasing} active, ${releasing} releasing) with goal ${goal}`,
    );
  }
  for (const slot of state.slots) {
    if (slot.index >= goal)
      problems.push(`slot ${slot.index} (${slot.member}, epoch ${slot.epoch}) is not below the goal ${goal}`);
    if (judgeRecords && !slot.recorded)
      problems.push(`slot ${slot.index} names ${slot.member}, which has no member record`);
  }
  return problems.join('; ');
}
