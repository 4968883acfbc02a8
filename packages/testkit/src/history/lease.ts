import { DEFAULT_CLOCK_DRIFT } from './assumptions.js';
import { ms, offset, violation } from './format.js';
import type { Belief, OkRenewal, Timeline } from './timeline.js';
import type { GroupParams, HistoryEvent, RenewalEvent, Violation, WorkEvent } from './types.js';

/**
 * How exactly the fixture maps a member's clock onto the history's (a few µs: it reads both
 * clocks back to back, see test/fixtures/history-member.ts). The rules of this file compare
 * instants taken on those two clocks; this is the only allowance they make.
 */
export const CLOCK_MAPPING_NS = 10_000n;

/**
 * Rule 7 (S4, the arithmetic): a renewal sent at t0 lets the member act until at most
 * t0 + (A(1−ρ) − δ) / r on the real clock, r being its clock's rate and δ ≥ 0. The script tap
 * knows when the request left (`sentAt`, after the member's t0), so an ok renewal's deadline
 * must not exceed sentAt + A(1−ρ) / r; and the t0 the member reports (`claimedSentAt`) must
 * not come after its request left. One violation per member: its worst renewal, and how many.
 */
export function checkLeaseBound(timeline: Timeline, params: GroupParams): Violation[] {
  const rho = params.clockDrift ?? DEFAULT_CLOCK_DRIFT;
  const leaseMs = params.activationIntervalMs * (1 - rho);
  const found = new Map<string, { worst: OkRenewal; excess: bigint; count: number; why: string }>();
  for (const event of timeline.events) {
    if (!isOk(event) || event.sentAt === undefined) continue;
    const rate = timeline.membershipAt(event.member, event.t)?.join.clockRate ?? 1;
    const bound = event.sentAt + BigInt(Math.ceil((leaseMs / rate) * 1e6));
    const late = event.claimedSentAt === undefined ? 0n : event.claimedSentAt - event.sentAt;
    const excess = event.deadline - bound > late ? event.deadline - bound : late;
    if (excess <= CLOCK_MAPPING_NS) continue;
    const why =
      excess === late
        ? `took its t0 ${ms(late)} ms after its request was sent`
        : `was given a deadline ${ms(event.deadline - event.sentAt)} ms after its request was sent, ` +
          `beyond A(1−ρ)/r = ${ms(bound - event.sentAt)} ms`;
    const known = found.get(event.member);
    if (!known) found.set(event.member, { worst: event, excess, count: 1, why });
    else {
      known.count += 1;
      if (excess > known.excess) Object.assign(known, { worst: event, excess, why });
    }
  }
  return [...found.values()].map(({ worst, count, why }) =>
    violation(
      7,
      `${worst.member} ${why} (at ${offset(worst.t - timeline.start)}; ${count} renewal(s) of ${worst.member} broke the bound)`,
      [worst],
      timeline,
    ),
  );
}

/**
 * Rule 8 (S4, `isActive()`): every `work` falls inside a belief of its member with the same
 * epoch — after its `activate`, before its `deactivate` and before its lease deadline. Work
 * outside one is a member acting on a lease it does not have, whatever the sink then decides.
 * One violation per member: its first such work, and how many.
 */
export function checkWorkInsideBelief(timeline: Timeline): Violation[] {
  const beliefsOf = new Map<string, Belief[]>();
  for (const belief of timeline.beliefs)
    beliefsOf.set(belief.member, [...(beliefsOf.get(belief.member) ?? []), belief]);
  const found = new Map<string, { first: WorkEvent; count: number }>();
  for (const event of timeline.events) {
    if (event.type !== 'work') continue;
    const inside = (beliefsOf.get(event.member) ?? []).some(
      (b) =>
        b.activate.epoch === event.epoch &&
        b.start <= event.t &&
        (b.end === undefined || event.t < b.end + CLOCK_MAPPING_NS),
    );
    if (inside) continue;
    const known = found.get(event.member);
    if (known) known.count += 1;
    else found.set(event.member, { first: event, count: 1 });
  }
  return [...found.values()].map(({ first, count }) => {
    const { member } = first;
    const evidence: HistoryEvent[] = [first];
    const before = timeline.eventsOf(member).filter((e) => e.t <= first.t);
    const lastAction = before.findLast((e) => e.type === 'activate' || e.type === 'deactivate');
    if (lastAction) evidence.push(lastAction);
    const lease = timeline.leaseAt(member, first.t);
    if (lease) evidence.push(lease);
    return violation(
      8,
      `${member} worked with epoch ${first.epoch} at ${offset(first.t - timeline.start)} outside any belief of ` +
        `holding that epoch (${count} such work(s) by ${member})`,
      evidence,
      timeline,
    );
  });
}

/**
 * Rule 9 (S4): a belief that ended because its lease deadline passed stays ended. A reply that
 * reaches the member after that deadline (`repliedAt`) must find it deactivated; an ok
 * renewal handled then, with no `deactivate` between the deadline and it, is a lease revived
 * by a late reply.
 */
export function checkNoRevival(timeline: Timeline): Violation[] {
  const violations: Violation[] = [];
  for (const belief of timeline.beliefs) {
    const deadline = belief.end;
    if (belief.endedBy || deadline === undefined) continue;
    const after = timeline.eventsOf(belief.member).filter((e) => e.t >= deadline);
    const revival = after.find(
      (e): e is OkRenewal => isOk(e) && e.repliedAt !== undefined && e.repliedAt >= deadline + CLOCK_MAPPING_NS,
    );
    if (!revival) continue;
    const stopped = after.some(
      (e) => e.t < revival.t && (e.type === 'deactivate' || e.type === 'leave' || e.type === 'killed'),
    );
    if (stopped) continue;
    const lease = timeline.leaseAt(belief.member, deadline - 1n);
    violations.push(
      violation(
        9,
        `${belief.member}'s lease for epoch ${belief.activate.epoch} ran out at ${offset(deadline - timeline.start)}, ` +
          `and a renewal reply ${ms((revival.repliedAt ?? revival.t) - deadline)} ms later found it still holding the ` +
          'slot, with no deactivate between',
        [belief.activate, ...(lease ? [lease] : []), revival],
        timeline,
      ),
    );
  }
  return violations;
}

function isOk(event: HistoryEvent): event is Extract<RenewalEvent, { outcome: 'ok' }> {
  return event.type === 'renewal' && event.outcome === 'ok';
}
