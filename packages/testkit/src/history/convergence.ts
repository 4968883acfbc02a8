import { ms, offset, violation } from './format.js';
import { isMembershipChange, type Timeline } from './timeline.js';
import type { GroupParams, HistoryEvent, Violation } from './types.js';

/** Who should be active at instant t, and who believes it is. */
export interface Standing {
  expected: string[];
  believers: string[];
  converged: boolean;
}

/**
 * The top min(N, eligible) live members by rank: weight (highest first), then a member that
 * believes it is active before one that does not (no failback between equals), then the
 * earlier joiner. Disabled members (weight 0) are eligible only when no positive weight is live.
 */
export function standingAt(timeline: Timeline, t: bigint, activeGoal: number): Standing {
  const believers = new Set(timeline.believersAt(t).map((b) => b.member));
  const live = timeline.liveAt(t).map((m) => ({ membership: m, weight: timeline.weightAt(m, t) }));
  const positive = live.filter((m) => m.weight > 0);
  const eligible = positive.length > 0 ? positive : live;
  eligible.sort(
    (x, y) =>
      y.weight - x.weight ||
      Number(believers.has(y.membership.member)) - Number(believers.has(x.membership.member)) ||
      (x.membership.join.t < y.membership.join.t ? -1 : x.membership.join.t > y.membership.join.t ? 1 : 0) ||
      x.membership.member.localeCompare(y.membership.member),
  );
  const expected = eligible.slice(0, activeGoal).map((m) => m.membership.member);
  const converged = believers.size === expected.length && expected.every((m) => believers.has(m));
  return { expected, believers: [...believers].sort(), converged };
}

/**
 * Rule 4 (L1): in every quiet period — after a heal that closes the last open fault, after a
 * membership or weight change, or from the start — that lasts at least the settling time
 * S = A + H + slack, the group is converged from S after the period's start until its end.
 */
export function checkConvergence(timeline: Timeline, params: GroupParams, settleNs: bigint): Violation[] {
  const disturbances = timeline.events.filter((e) => isMembershipChange(e) || e.type === 'fault' || e.type === 'heal');
  const starts = [...new Set([timeline.start, ...disturbances.map((e) => e.t)])].sort((a, b) => (a < b ? -1 : 1));
  const violations: Violation[] = [];
  starts.forEach((from, index) => {
    const until = starts[index + 1] ?? timeline.end;
    if (until - from < settleNs || timeline.faultOpenAt(from)) return;
    const cause = disturbances.filter((e) => e.t === from);
    const found = checkQuietPeriod(timeline, params, settleNs, from, until, cause, index + 1 < starts.length);
    if (found) violations.push(found);
  });
  return violations;
}

function checkQuietPeriod(
  timeline: Timeline,
  params: GroupParams,
  settleNs: bigint,
  from: bigint,
  until: bigint,
  cause: readonly HistoryEvent[],
  endsWithChange: boolean,
): Violation | undefined {
  const limit = from + settleNs;
  // The answer changes only where a belief starts or ends.
  const cuts = new Set<bigint>([from]);
  for (const b of timeline.beliefs) {
    for (const t of [b.start, b.end]) if (t !== undefined && t > from && t < until) cuts.add(t);
  }
  const pieces = [...cuts]
    .sort((a, b) => (a < b ? -1 : 1))
    .map((start, i, all) => ({ start, end: all[i + 1] ?? until, ...standingAt(timeline, start, params.activeGoal) }));
  const bad = pieces.findIndex((p) => p.end > limit && !p.converged);
  const lost = pieces[bad];
  if (!lost) return undefined;
  const regained = pieces.slice(bad + 1).find((p) => p.converged)?.start;

  const what = cause.length > 0 ? cause.map(describe).join(', ') : 'the start of the history';
  const periodEnd = endsWithChange ? 'the next change' : 'the end of the history';
  const state = `expected active [${lost.expected.join(', ')}], believing active [${lost.believers.join(', ')}]`;
  let message: string;
  if (lost.start <= limit) {
    const outcome =
      regained === undefined
        ? `still not converged ${ms(until - from)} ms later, at ${periodEnd}`
        : `converged only after ${ms(regained - from)} ms`;
    message = `after ${what} at ${offset(from - timeline.start)}: ${state} at the limit of ${ms(settleNs)} ms; ${outcome}`;
  } else {
    const outcome =
      regained === undefined ? `not regained before ${periodEnd}` : `regained ${ms(regained - lost.start)} ms later`;
    message =
      `lost convergence at ${offset(lost.start - timeline.start)}, ${ms(lost.start - from)} ms after ${what} ` +
      `(settled by ${ms(settleNs)} ms): ${state}; ${outcome}`;
  }
  const evidenceFrom = lost.start <= limit ? from : lost.start;
  return violation(4, message, [...cause, ...transitionsBetween(timeline, evidenceFrom, regained ?? until)], timeline);
}

/** Activate and deactivate events in [from, to], and the renewal behind each belief that ran out there. */
function transitionsBetween(timeline: Timeline, from: bigint, to: bigint): HistoryEvent[] {
  const evidence = timeline.events.filter(
    (e) => (e.type === 'activate' || e.type === 'deactivate') && e.t >= from && e.t <= to,
  );
  for (const b of timeline.beliefs) {
    if (b.endedBy || b.end === undefined || b.end < from || b.end > to) continue;
    const lease = timeline.leaseAt(b.member, b.end - 1n);
    if (lease) evidence.push(lease);
  }
  return evidence;
}

function describe(event: HistoryEvent): string {
  switch (event.type) {
    case 'fault':
    case 'heal':
      return `${event.type} of '${event.fault}'`;
    case 'killed':
      return `kill of ${event.member}`;
    case 'weight':
      return `weight change of ${event.member} to ${event.weight}`;
    default:
      return `${event.type} of ${event.member}`;
  }
}
