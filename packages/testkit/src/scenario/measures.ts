import { standingAt } from '../history/convergence.js';
import { isMembershipChange, Timeline } from '../history/timeline.js';
import type { History } from '../history/types.js';

export interface Convergence {
  /** When the fault episode ended (its last heal), hrtime ns. */
  healedAt: bigint;
  /** Time from the heal until the top min(N, live) members, and only they, believed they were active; undefined if that did not happen before the next fault or the end. */
  ms: number | undefined;
}

/**
 * How long the group took to converge after each fault episode healed (L1), measured on the
 * history with the checker's own model of who should be active and who believes it is.
 */
export function convergenceAfterFaults(history: History, activeGoal: number): Convergence[] {
  const timeline = new Timeline(history);
  return timeline.faults.flatMap((episode, index) => {
    if (episode.end === undefined) return [];
    const healedAt = episode.end;
    const until = timeline.faults[index + 1]?.start ?? timeline.end;
    const cuts = new Set<bigint>([healedAt]);
    for (const belief of timeline.beliefs) {
      for (const t of [belief.start, belief.end]) if (t !== undefined && t > healedAt && t <= until) cuts.add(t);
    }
    for (const event of timeline.events)
      if (isMembershipChange(event) && event.t > healedAt && event.t <= until) cuts.add(event.t);
    const first = [...cuts]
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .find((t) => standingAt(timeline, t, activeGoal).converged);
    return [{ healedAt, ms: first === undefined ? undefined : Number(first - healedAt) / 1e6 }];
  });
}
