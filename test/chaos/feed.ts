// The group feed's fault scenario (DESIGN §10, docs/RELIABILITY.md "Messages"): a publisher
// on its own connection publishes all along; every member has an `onMessage` that records
// each message (rules 13 and 14 of the history checker, and rule 8 for the work an active
// message is). The faults: active members SIGKILLed while their onMessage runs.
import type { GroupIntervals, HistoryEvent, MemberSpec, Scenario } from '../../packages/testkit/src/index.js';
import { TRIO } from './faults.js';
import { publishing } from './messaging.js';

/** As the group scenarios' (H = 150 ms, A = 900 ms), with two slots: the rule is "by a holder of each slot". */
const FEED_INTERVALS: GroupIntervals = Object.freeze({
  activeGoal: 2,
  heartbeatInterval: 150,
  preparationInterval: 0,
  activationInterval: 900,
});

/** How long onMessage takes: the window a kill is timed into. */
const MESSAGE_MS = 25;
const PUBLISH_EVERY_MS = 40;
const KILLS = 3;

const killMidMessage: Scenario = {
  name: 'feed-kill-mid-message',
  title:
    'the group feed under a steady publisher: an active member SIGKILLed inside its onMessage, three times, each restarted',
  criteria:
    'at least two kills land inside an active onMessage; no message is delivered active outside the lease; messages were published throughout',
  params: FEED_INTERVALS,
  members: TRIO,
  feed: { messageMs: MESSAGE_MS },
  async run(run) {
    const publisher = publishing(run, PUBLISH_EVERY_MS);
    try {
      for (let kill = 0; kill < KILLS; kill++) {
        await run.sleep(run.settleMs);
        const victim = run.victim(run.random.pick(run.actives()));
        // Kill it right after it reports an active message starting: inside its MESSAGE_MS.
        const before = victim.reported('message').length;
        await victim.until(
          () =>
            victim
              .reported('message')
              .slice(before)
              .some((m) => m.phase === 'start' && m.active),
          'an active message to start',
          10 * run.A,
          run.signal,
        );
        await run.kill(victim);
        await run.sleep(run.A);
        const spec = TRIO.find((m) => m.id === victim.id) as MemberSpec;
        await run.spawn(spec);
        await run.untilConverged(run.settleMs + 5 * run.A);
      }
    } finally {
      await publisher.stop();
    }
    if (publisher.count < 20) run.unmet(`only ${publisher.count} messages were published`);
    // The quiet period: the slots' holders act on what is left.
    await run.sleep(run.settleMs);
  },
  verify(outcome) {
    const unmet: string[] = [];
    const midMessage = killedMidMessage(outcome.history);
    if (midMessage < 2) unmet.push(`only ${midMessage} of ${KILLS} kills landed inside an active onMessage`);
    for (const member of outcome.members) {
      for (const r of member.reported('active-outside-lease')) {
        unmet.push(`${member.id} got message ${r.id} as active while isActive() was false`);
      }
    }
    return unmet;
  },
  measure(outcome) {
    return {
      published: outcome.history.filter((e) => e.type === 'publish').length,
      killedMidMessage: killedMidMessage(outcome.history),
    };
  },
};

/** Kills whose member's latest message event was an active `start`: the kill landed inside onMessage. */
function killedMidMessage(history: readonly HistoryEvent[]): number {
  const last = new Map<string, HistoryEvent>();
  let count = 0;
  for (const e of history) {
    if (e.type === 'message') last.set(e.member, e);
    if (e.type === 'killed') {
      const m = last.get(e.member);
      if (m?.type === 'message' && m.phase === 'start' && m.active) count += 1;
      last.delete(e.member);
    }
  }
  return count;
}

export const FEED_SCENARIOS: readonly Scenario[] = [killMidMessage];
