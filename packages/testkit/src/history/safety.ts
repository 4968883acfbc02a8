import { ms, offset, violation } from './format.js';
import type { Belief, Timeline } from './timeline.js';
import type { ActivateEvent, GroupParams, HistoryEvent, SinkEvent, Violation } from './types.js';

/** Rule 1 (S1): at no instant do more than activeGoal members believe they are active. */
export function checkNeverAboveGoal(timeline: Timeline, params: GroupParams): Violation[] {
  const points: { t: bigint; delta: 1 | -1; belief: Belief }[] = [];
  for (const belief of timeline.beliefs) {
    points.push({ t: belief.start, delta: 1, belief });
    if (belief.end !== undefined) points.push({ t: belief.end, delta: -1, belief });
  }
  // Beliefs are half-open: one ending at t and another starting at t do not overlap.
  points.sort((a, b) => (a.t < b.t ? -1 : a.t > b.t ? 1 : a.delta - b.delta));

  const violations: Violation[] = [];
  const believing = new Set<Belief>();
  // While above the goal: every belief involved, with the instant it became involved.
  let episode: { from: bigint; involved: Map<Belief, bigint>; peak: number } | undefined;
  const report = (until: bigint | undefined) => {
    if (!episode) return;
    const { from, involved, peak } = episode;
    const evidence: HistoryEvent[] = [];
    for (const [belief, instant] of involved) {
      evidence.push(belief.activate);
      // The renewal whose deadline still covered the member when it became involved.
      const lease = timeline.leaseAt(belief.member, instant);
      if (lease) evidence.push(lease);
    }
    const members = [...new Set([...involved.keys()].map((b) => b.member))].join(', ');
    const duration = until === undefined ? 'until the history ends' : `for ${ms(until - from)} ms`;
    violations.push(
      violation(
        1,
        `${peak} members believed they were active at once (${members}) with activeGoal ${params.activeGoal}, ` +
          `from ${offset(from - timeline.start)} ${duration}`,
        evidence,
        timeline,
      ),
    );
    episode = undefined;
  };
  for (const { t, delta, belief } of points) {
    if (delta === -1) {
      believing.delete(belief);
      if (believing.size <= params.activeGoal) report(t);
      continue;
    }
    believing.add(belief);
    if (believing.size <= params.activeGoal) continue;
    if (!episode) episode = { from: t, involved: new Map([...believing].map((b) => [b, t])), peak: 0 };
    else if (!episode.involved.has(belief)) episode.involved.set(belief, t);
    episode.peak = Math.max(episode.peak, believing.size);
  }
  report(undefined);
  return violations;
}

/** Rule 2 (S2): activation epochs are unique and strictly increase in activation order. */
export function checkEpochsIncrease(timeline: Timeline): Violation[] {
  const activations = timeline.events.filter((e): e is ActivateEvent => e.type === 'activate');
  const violations: Violation[] = [];
  activations.forEach((later, index) => {
    const epoch = BigInt(later.epoch);
    let blocking: ActivateEvent | undefined;
    for (const earlier of activations.slice(0, index)) {
      const earlierEpoch = BigInt(earlier.epoch);
      // Redis granted `later` after `earlier` for sure only if its request left after `earlier` was recorded.
      const ordered = later.requestSentAt === undefined || earlier.t < later.requestSentAt;
      const conflicts = earlierEpoch === epoch || (ordered && earlierEpoch > epoch);
      if (conflicts && (!blocking || earlierEpoch > BigInt(blocking.epoch))) blocking = earlier;
    }
    if (!blocking) return;
    const message =
      BigInt(blocking.epoch) === epoch
        ? `${later.member} activated with epoch ${later.epoch}, which ${blocking.member} had already activated with`
        : `${later.member} activated with epoch ${later.epoch} after ${blocking.member} had activated with the greater epoch ${blocking.epoch}`;
    violations.push(violation(2, message, [blocking, later], timeline));
  });
  return violations;
}

/** Rule 3 (fencing downstream): every accepted epoch is at least every epoch accepted before it. */
export function checkSinkNeverStale(timeline: Timeline): Violation[] {
  const violations: Violation[] = [];
  let highest: SinkEvent | undefined;
  for (const event of timeline.events) {
    if (event.type !== 'sink-accept') continue;
    if (highest && BigInt(event.epoch) < BigInt(highest.epoch)) {
      violations.push(
        violation(
          3,
          `the sink accepted epoch ${event.epoch} from ${event.member} after accepting epoch ${highest.epoch} from ${highest.member}`,
          [highest, event],
          timeline,
        ),
      );
    } else if (!highest || BigInt(event.epoch) > BigInt(highest.epoch)) {
      highest = event;
    }
  }
  return violations;
}
