import { violation } from './format.js';
import type { Timeline } from './timeline.js';
import type { ActivateEvent, CommitEvent, GroupParams, MessageEvent, PublishEvent, Violation } from './types.js';

/**
 * Rule 13 (DESIGN §10): every message the harness published (`publish`, recorded once its
 * `XADD` returned) is acted on by a holder of each slot 0 … N−1 at least once: some member
 * recorded `message` `done` for it with `active` and that slot. Judged over the whole run, so
 * the run must end with a quiet period in which the slots' holders catch up.
 */
export function checkFeedActedOn(timeline: Timeline, params: GroupParams): Violation[] {
  const acted = new Map<string, Set<number>>();
  for (const event of timeline.events) {
    if (event.type !== 'message' || event.phase !== 'done' || !event.active || event.slot === undefined) continue;
    const slots = acted.get(event.id) ?? new Set<number>();
    slots.add(event.slot);
    acted.set(event.id, slots);
  }
  const violations: Violation[] = [];
  for (const event of timeline.events) {
    if (event.type !== 'publish') continue;
    const slots = acted.get(event.id) ?? new Set<number>();
    const missing = Array.from({ length: params.activeGoal }, (_, slot) => slot).filter((slot) => !slots.has(slot));
    if (missing.length > 0) {
      violations.push(
        violation(
          13,
          `message ${event.id} was never acted on (delivered active, handler resolved) for slot ${missing.join(', ')}`,
          [event as PublishEvent],
          timeline,
        ),
      );
    }
  }
  return violations;
}

/**
 * Rule 14 (DESIGN §10): a commit comes from a current holder only. A `commit` of message X for
 * slot s with epoch e was accepted after its member's handler for X resolved (`message` done,
 * the commit is sent after it); if another member had already activated in slot s with a
 * higher epoch by then, Redis had moved the slot on and the commit should have been refused.
 * (Sound, not complete: an activation is recorded after Redis granted it.)
 */
export function checkCommitFromHolder(timeline: Timeline): Violation[] {
  const violations: Violation[] = [];
  const activations = timeline.events.filter((e): e is ActivateEvent => e.type === 'activate' && e.slot !== undefined);
  for (const event of timeline.events) {
    if (event.type !== 'commit') continue;
    const commit = event as CommitEvent;
    const done = timeline.events.findLast(
      (e): e is MessageEvent =>
        e.type === 'message' &&
        e.phase === 'done' &&
        e.member === commit.member &&
        e.id === commit.id &&
        e.epoch === commit.epoch &&
        e.t <= commit.t,
    );
    if (!done) {
      violations.push(
        violation(
          14,
          `${commit.member} committed ${commit.id} for slot ${commit.slot} with epoch ${commit.epoch} without having acted on it with that epoch`,
          [commit],
          timeline,
        ),
      );
      continue;
    }
    const newer = activations.find(
      (a) =>
        a.slot === commit.slot && a.member !== commit.member && BigInt(a.epoch) > BigInt(commit.epoch) && a.t < done.t,
    );
    if (newer) {
      violations.push(
        violation(
          14,
          `${commit.member}'s commit of ${commit.id} (epoch ${commit.epoch}) was accepted although ${newer.member} held slot ${commit.slot} with epoch ${newer.epoch} before the handler resolved`,
          [newer, done, commit],
          timeline,
        ),
      );
    }
  }
  return violations;
}
