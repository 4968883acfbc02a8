import { ms, offset, violation } from './format.js';
import type { Timeline } from './timeline.js';
import type { HistoryEvent, ObserveEvent, Violation } from './types.js';

/**
 * Rule 6 (S7): every member that stays live learns every group version within H + slack of
 * the version's first observation by anyone. A member learns version v by observing v or
 * any later version. Versions whose deadline falls in a fault, or after the history ends,
 * are not judged; members that join after the first observation, or leave or are killed
 * before the deadline, owe nothing.
 */
export function checkEveryoneLearns(timeline: Timeline, limitNs: bigint): Violation[] {
  const observations = timeline.events.filter((e): e is ObserveEvent => e.type === 'observe');
  const versions = [...new Set(observations.map((o) => o.version))].sort((a, b) => a - b);
  const violations: Violation[] = [];
  // A member already reported behind is not reported again for versions it missed meanwhile.
  const behindUntil = new Map<string, bigint | undefined>();
  for (const version of versions) {
    const first = observations.find((o) => o.version >= version) as ObserveEvent;
    const due = first.t + limitNs;
    if (due > timeline.end || timeline.faultDuring(first.t, due)) continue;
    for (const membership of timeline.memberships) {
      const { member } = membership;
      const liveThroughout = membership.join.t <= first.t && (membership.end === undefined || membership.end.t > due);
      if (!liveThroughout || behindOf(behindUntil, member, first.t)) continue;
      const own = observations.filter((o) => o.member === member && o.t >= membership.join.t);
      const learned = own.find((o) => o.version >= version);
      if (learned && learned.t <= due) continue;
      behindUntil.set(member, learned?.t);
      const before = own.findLast((o) => o.t <= first.t && o.version < version);
      const window: HistoryEvent[] = [first, ...(before ? [before] : []), ...(learned ? [learned] : [])];
      const outcome = learned
        ? `learned it only ${ms(learned.t - first.t)} ms later`
        : `had not learned it ${ms(timeline.end - first.t)} ms later, when the history ends`;
      const seen = first.version === version ? '' : ` (as version ${first.version})`;
      violations.push(
        violation(
          6,
          `${member} missed version ${version}: ${first.member} observed it${seen} at ` +
            `${offset(first.t - timeline.start)}, and ${member} ${outcome} (limit ${ms(limitNs)} ms)`,
          window,
          timeline,
        ),
      );
    }
  }
  return violations;
}

function behindOf(behindUntil: Map<string, bigint | undefined>, member: string, t: bigint): boolean {
  if (!behindUntil.has(member)) return false;
  const until = behindUntil.get(member);
  return until === undefined || t < until;
}
