import { ms, offset, violation } from './format.js';
import { isMembershipChange, type Timeline } from './timeline.js';
import type { HistoryEvent, Violation } from './types.js';

/**
 * Rule 5: no activate or deactivate in a steady period, that is outside every
 * [fault, heal + S) and every [change, change + S), S being the settling time.
 */
export function checkNoFlapping(timeline: Timeline, settleNs: bigint): Violation[] {
  const unsettled = mergedUnsettledPeriods(timeline, settleNs);
  // Flaps between the same two unsettled periods are one episode, reported once.
  const episodes = new Map<number, HistoryEvent[]>();
  for (const event of timeline.events) {
    if (event.type !== 'activate' && event.type !== 'deactivate') continue;
    if (unsettled.some((p) => p.from <= event.t && (p.to === undefined || event.t < p.to))) continue;
    const steadyPeriod = unsettled.filter((p) => p.from <= event.t).length;
    episodes.set(steadyPeriod, [...(episodes.get(steadyPeriod) ?? []), event]);
  }
  return [...episodes.values()].map((events) => {
    const first = events[0] as HistoryEvent;
    const list = events.map((e) => `${e.type} of ${e.member}`).join(', ');
    return violation(
      5,
      `${list} from ${offset(first.t - timeline.start)}, in a steady period (more than ${ms(settleNs)} ms ` +
        'after any fault healed or the membership or a weight changed)',
      events,
      timeline,
    );
  });
}

interface Period {
  from: bigint;
  /** Undefined: lasts until the history ends (a fault never healed). */
  to: bigint | undefined;
}

function mergedUnsettledPeriods(timeline: Timeline, settleNs: bigint): Period[] {
  const periods: Period[] = [
    ...timeline.faults.map((f) => ({ from: f.start, to: f.end === undefined ? undefined : f.end + settleNs })),
    ...timeline.events.filter(isMembershipChange).map((e) => ({ from: e.t, to: e.t + settleNs })),
  ].sort((a, b) => (a.from < b.from ? -1 : a.from > b.from ? 1 : 0));
  const merged: Period[] = [];
  for (const period of periods) {
    const last = merged.at(-1);
    if (last && (last.to === undefined || period.from <= last.to)) {
      if (last.to !== undefined && (period.to === undefined || period.to > last.to)) last.to = period.to;
    } else {
      merged.push({ ...period });
    }
  }
  return merged;
}
