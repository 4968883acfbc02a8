import { ms, offset, violation } from './format.js';
import type { Timeline } from './timeline.js';
import type { ActivateEvent, DeactivateEvent, GroupParams, HistoryEvent, Violation } from './types.js';

/** A member still occupying its slot while its deactivate handler runs. */
interface Occupancy {
  member: string;
  deactivate: DeactivateEvent;
  /** Exclusive: the handler settled, the member was killed or rejoined, or its lease may have lapsed. */
  end: bigint;
  /** The renewal whose lease still held the slot at the end, for the evidence. */
  lease: HistoryEvent | undefined;
}

/**
 * Rule 12 (demote before promote, DESIGN §1): a member whose deactivate handler runs still
 * holds its slot — it gives it back only once the handler settled — unless its lease lapsed
 * on Redis. So at every activation, the members believing they are active plus those
 * occupying a slot that way are at most N. A lease cannot have lapsed before the send instant
 * of its latest ok renewal + A (Redis ran that renewal after it was sent), so occupancy is
 * counted up to that bound only: a handler still running after a cut-off member's lease
 * lapsed does not hold the slot.
 */
export function checkDemoteBeforePromote(timeline: Timeline, params: GroupParams): Violation[] {
  const occupancies = findOccupancies(timeline, BigInt(Math.round(params.activationIntervalMs * 1e6)));
  const violations: Violation[] = [];
  for (const event of timeline.events) {
    if (event.type !== 'activate') continue;
    const believers = new Set(timeline.believersAt(event.t).map((b) => b.member));
    if (!believers.has(event.member)) continue; // an activate on a lease that had already run out
    const occupying = occupancies.filter(
      (o) => o.member !== event.member && !believers.has(o.member) && o.deactivate.t <= event.t && event.t < o.end,
    );
    if (occupying.length === 0 || believers.size + occupying.length <= params.activeGoal) continue;
    violations.push(report(timeline, event, occupying, params.activeGoal));
  }
  return violations;
}

function findOccupancies(timeline: Timeline, activationNs: bigint): Occupancy[] {
  const occupancies: Occupancy[] = [];
  for (const deactivate of timeline.events) {
    if (deactivate.type !== 'deactivate') continue;
    const own = timeline.eventsOf(deactivate.member);
    const after = own.filter((e) => e.t >= deactivate.t);
    const handlerEnd =
      after.find(
        (e) =>
          (e.type === 'deactivate-settled' && e.epoch === deactivate.epoch) || e.type === 'killed' || e.type === 'join',
      )?.t ?? timeline.end;
    // The lease: extended by every ok renewal that arrived before the previous bound passed.
    let lease = own.findLast((e) => isOkWithSentAt(e) && e.t <= deactivate.t);
    if (!lease || !isOkWithSentAt(lease)) continue;
    let lapseBound = lease.sentAt + activationNs;
    for (const renewal of after) {
      if (renewal.t >= lapseBound || renewal.t >= handlerEnd) break;
      if (isOkWithSentAt(renewal) && renewal.sentAt + activationNs > lapseBound) {
        lapseBound = renewal.sentAt + activationNs;
        lease = renewal;
      }
    }
    let end = handlerEnd;
    if (lapseBound < end) end = lapseBound;
    if (end > deactivate.t) occupancies.push({ member: deactivate.member, deactivate, end, lease });
  }
  return occupancies;
}

function report(timeline: Timeline, activate: ActivateEvent, occupying: Occupancy[], goal: number): Violation {
  const others = occupying
    .map(
      (o) =>
        `${o.member} (deactivating epoch ${o.deactivate.epoch} since ${ms(activate.t - o.deactivate.t)} ms, ` +
        `holding its slot ${ms(o.end - activate.t)} ms longer)`,
    )
    .join(', ');
  const settled = (o: Occupancy) =>
    timeline.eventsOf(o.member).find((e) => e.type === 'deactivate-settled' && e.t >= o.deactivate.t);
  return violation(
    12,
    `${activate.member} activated at ${offset(activate.t - timeline.start)} while the deactivate handler of ` +
      `${others} still ran, with activeGoal ${goal}`,
    [
      activate,
      ...occupying.flatMap((o) => [o.deactivate, ...(o.lease ? [o.lease] : []), ...(settled(o) ? [settled(o)] : [])]),
    ].filter((e): e is HistoryEvent => e !== undefined),
    timeline,
  );
}

function isOkWithSentAt(event: HistoryEvent | undefined): event is HistoryEvent & { sentAt: bigint } {
  return event?.type === 'renewal' && event.outcome === 'ok' && event.sentAt !== undefined;
}
