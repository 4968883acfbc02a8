import { findBreaches, markOutsideModel } from './assumptions.js';
import { checkEveryoneLearns } from './awareness.js';
import { checkConvergence } from './convergence.js';
import { checkCommitFromHolder, checkFeedActedOn } from './feed.js';
import { checkDemoteBeforePromote } from './handover.js';
import { checkLeaseBound, checkNoRevival, checkWorkInsideBelief } from './lease.js';
import { checkNoResend, checkRedisState, checkServerFloors } from './redis-side.js';
import { checkEpochsIncrease, checkNeverAboveGoal, checkSinkNeverStale } from './safety.js';
import { checkNoFlapping } from './steadiness.js';
import { checkNoStaleCompletion, checkNothingLost, checkOneWorkerAtATime } from './tasks.js';
import { Timeline } from './timeline.js';
import type { CheckResult, GroupParams, History } from './types.js';

export interface CheckOptions {
  /** The "+ 0.5 s" of the liveness rules: allowance for scheduling and round trips, in ms (default 500). */
  slackMs?: number;
}

/**
 * Checks a recorded history against the rules of DESIGN.md §2:
 * (1) never more than activeGoal members believe they are active; (2) activation epochs are
 * unique and strictly increase; (3) the sink never accepts a stale epoch; (4) the group
 * converges within A + H + slack after faults heal and after membership changes; (5) nothing
 * activates or deactivates in steady periods; (6) every live member learns every group
 * version within H + slack (from `observe` events); (7) every lease deadline is within
 * t0 + A(1−ρ)/r of its request; (8) a member works only inside its belief; (9) no late reply
 * revives a lapsed lease; (10) no script request is sent twice; (11) Redis holds no more
 * slots than the goal, each below it and with a member record; (12) demote before promote:
 * nobody activates while a deactivate handler still holds the slot it needs.
 * The group feed and queues (DESIGN §10, §11): (13) every published message is acted on by a
 * holder of each slot; (14) a commit comes from a current holder only; (15) a task is in
 * flight at one worker at a time; (16) no accepted completion from a stale token; (17) every
 * enqueued task completes or reaches the dead letters.
 * Quorum mode (DESIGN §9): (18) every server of the quorum accepts only epochs above its
 * floor (redis-state events that name their server); rule 11 judges each server on its own.
 * Safety rules (1–3, 7–12, 14–16, 18) hold at all times, faults or not; liveness rules (4–6)
 * are suspended while a fault is open, and 13 and 17 are judged on the whole run.
 * A member whose clock drifts beyond ρ (its join's `clockRate`) is outside S1's model:
 * violations of rules 1, 4, 5 and 12 that involve it are kept, marked `outsideModel`, and do
 * not make the result fail; `breaches` names such members.
 */
export function checkHistory(history: History, params: GroupParams, options: CheckOptions = {}): CheckResult {
  validate(params, options);
  const timeline = new Timeline(history);
  const slackNs = nanoseconds(options.slackMs ?? 500);
  const settleNs = nanoseconds(params.activationIntervalMs + params.heartbeatIntervalMs) + slackNs;
  const violations = [
    ...checkNeverAboveGoal(timeline, params),
    ...checkEpochsIncrease(timeline),
    ...checkSinkNeverStale(timeline),
    ...checkConvergence(timeline, params, settleNs),
    ...checkNoFlapping(timeline, settleNs),
    ...checkEveryoneLearns(timeline, nanoseconds(params.heartbeatIntervalMs) + slackNs),
    ...checkLeaseBound(timeline, params),
    ...checkWorkInsideBelief(timeline),
    ...checkNoRevival(timeline),
    ...checkNoResend(timeline),
    ...checkRedisState(timeline, settleNs),
    ...checkDemoteBeforePromote(timeline, params),
    ...checkFeedActedOn(timeline, params),
    ...checkCommitFromHolder(timeline),
    ...checkOneWorkerAtATime(timeline),
    ...checkNoStaleCompletion(timeline),
    ...checkNothingLost(timeline),
    ...checkServerFloors(timeline),
  ];
  const breaches = findBreaches(timeline, params);
  const marked = markOutsideModel(violations, breaches);
  return { ok: marked.every((v) => v.outsideModel !== undefined), violations: marked, breaches };
}

function nanoseconds(ms: number): bigint {
  return BigInt(Math.round(ms * 1e6));
}

function validate(params: GroupParams, options: CheckOptions): void {
  if (!Number.isInteger(params.activeGoal) || params.activeGoal < 1) {
    throw new RangeError(`activeGoal must be an integer ≥ 1, got ${params.activeGoal}`);
  }
  for (const [field, value] of [
    ['activationIntervalMs', params.activationIntervalMs],
    ['heartbeatIntervalMs', params.heartbeatIntervalMs],
    ['slackMs', options.slackMs ?? 0],
    ['clockDrift', params.clockDrift ?? 0],
  ] as const) {
    if (!Number.isFinite(value) || value < 0)
      throw new RangeError(`${field} must be a finite number ≥ 0, got ${value}`);
  }
}
