import { ms, offset, violation } from './format.js';
import type { Timeline } from './timeline.js';
import type { RedisSlot, RedisStateEvent, ResendEvent, Violation } from './types.js';

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
  // Quorum mode: each server's snapshots are judged on their own (they interleave in time).
  const episodes = new Map<string, { problems: string; events: RedisStateEvent[] }>();
  const close = (server: string) => {
    const episode = episodes.get(server);
    if (!episode) return;
    const [first] = episode.events;
    const last = episode.events.at(-1) as RedisStateEvent;
    const lasted = first === last ? '' : ` (for ${ms(last.t - (first as RedisStateEvent).t)} ms)`;
    const where = last.server === undefined ? '' : `server ${last.server}: `;
    violations.push(
      violation(11, `${where}${episode.problems}${lasted}`, [first, last] as RedisStateEvent[], timeline),
    );
    episodes.delete(server);
  };
  for (const event of timeline.events) {
    if (event.type !== 'redis-state' || event.goal === 0) continue;
    const server = event.server ?? '';
    highestGoal = Math.max(highestGoal, event.goal);
    const problems = problemsOf(event, highestGoal, !timeline.faultDuring(event.t - settleNs, event.t));
    const episode = episodes.get(server);
    if (problems === episode?.problems) {
      episode.events.push(event);
      continue;
    }
    close(server);
    if (problems !== '') episodes.set(server, { problems, events: [event] });
  }
  for (const server of [...episodes.keys()]) close(server);
  return violations;
}

/**
 * Rule 18 (DESIGN §9, S2 whatever the server): a server accepts an epoch only above its floor,
 * the highest epoch it has accepted, and nothing lowers that floor — a server that lost its
 * state takes it up again from its clock. So on each server of a quorum, every slot that
 * appears (a member and epoch not in that server's previous snapshot) carries an epoch above
 * every epoch the server showed before — unless its member re-claims an epoch it already held
 * (seen on any server before, or activated by it: S6 lets a member keep its slot and epoch on
 * a server that lost the group). Judged on states that name their server (`server`): with one
 * Redis, rule 2 covers the epochs, and a promoted replica may show grants never read on the
 * old master. One violation per server and epoch.
 */
export function checkServerFloors(timeline: Timeline): Violation[] {
  const violations: Violation[] = [];
  const floors = new Map<string, { epoch: bigint; shownBy: RedisStateEvent }>();
  const previous = new Map<string, Set<string>>();
  const held = new Set<string>();
  const reported = new Set<string>();
  for (const event of timeline.events) {
    if (event.type === 'activate') held.add(pairOf(event.member, event.epoch));
    if (event.type !== 'redis-state' || event.server === undefined) continue;
    const server = event.server;
    const before = previous.get(server) ?? new Set<string>();
    const floor = floors.get(server);
    const pairs = new Set<string>();
    for (const slot of event.slots.filter(hasEpoch)) {
      const pair = pairOf(slot.member, slot.epoch);
      pairs.add(pair);
      if (before.has(pair) || held.has(pair) || !floor || BigInt(slot.epoch) > floor.epoch) continue;
      const key = `${server} ${slot.epoch}`;
      if (reported.has(key)) continue;
      reported.add(key);
      violations.push(
        violation(
          18,
          `server ${server} granted slot ${slot.index} to ${slot.member} with epoch ${slot.epoch}, not above its floor ` +
            `${floor.epoch} (shown at ${offset(floor.shownBy.t - timeline.start)})`,
          [floor.shownBy, event],
          timeline,
        ),
      );
    }
    for (const pair of pairs) held.add(pair);
    previous.set(server, pairs);
    for (const slot of event.slots.filter(hasEpoch)) {
      const epoch = BigInt(slot.epoch);
      if (!floors.has(server) || epoch > (floors.get(server) as { epoch: bigint }).epoch) {
        floors.set(server, { epoch, shownBy: event });
      }
    }
  }
  return violations;
}

function hasEpoch(slot: RedisSlot): boolean {
  return /^\d+$/.test(slot.epoch);
}

function pairOf(member: string, epoch: string): string {
  return `${member}\u0000${epoch}`;
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
