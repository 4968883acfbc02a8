// The fault scenarios of the reliability suite (docs/RELIABILITY.md): each one a group of
// history-recording member processes, the faults it injects, and how it passes. Every run is
// checked against DESIGN.md §2 by the test kit's history checker: rules 1–3 (never more than
// the goal, increasing epochs, a sink that accepts nothing stale) and 7–12 (the S4 arithmetic,
// work inside the belief, no revived lease, no resent script, Redis-side slot invariants,
// demote before promote) at all times, rules 4–6
// (convergence, no flapping, everyone learns every change) outside fault windows. A scenario's
// `verify` adds what must have happened for the run to prove anything (a failover did occur,
// the stale write did reach the sink and was refused, …).
import type { GroupIntervals, MemberSpec, Scenario } from '../../packages/testkit/src/index.js';
import { churnScenario } from './churn.js';
import { FAULT_SCENARIOS } from './faults.js';
import { FEED_SCENARIOS } from './feed.js';
import { HA_SCENARIOS } from './ha.js';
import { QUEUE_SCENARIOS } from './queues.js';
import { QUORUM_SCENARIOS } from './quorum.js';
import {
  activations,
  between,
  deactivations,
  demotedItself,
  noteOf,
  someoneElseActivated,
  theActive,
  victimOf,
} from './reading.js';

/**
 * H = 150 ms, A = 900 ms: short enough for CI, long enough for a loaded two-core machine (a
 * renewal times out after 0.8 H = 120 ms; a lease survives about four failed renewals).
 */
export const INTERVALS: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 150,
  preparationInterval: 0,
  activationInterval: 900,
});

/** ρ, the clock drift members are allowed (MEMBER_DEFAULTS.clockDrift), and rates just inside it. */
const RHO = 0.01;
export const SLOW_CLOCK = 1 - 0.9 * RHO;
export const FAST_CLOCK = 1 + 0.9 * RHO;

const TRIO: readonly MemberSpec[] = [
  { id: 'a', weight: 30 },
  { id: 'b', weight: 20 },
  { id: 'c', weight: 10 },
];

// ---- the scenarios -------------------------------------------------------------------------

const noFault: Scenario = {
  name: 'no-fault',
  title: 'no fault: the top member activates once, stays active, and hands over at once when it leaves',
  criteria:
    'once converged, no deactivation except on leave; the next member activates within A/2 of the leave (L3, not a lease)',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    await run.sleep(2 * run.settleMs);
    const active = theActive(run);
    run.note('leave');
    await run.leave(active);
    await run.untilConverged(run.settleMs);
  },
  verify(outcome) {
    const run = noteOf(outcome, 'run');
    const unmet = deactivations(outcome.history)
      .filter((e) => e.t > run && e.reason !== 'leave')
      .map((e) => `${e.member} deactivated (${e.reason}) with no fault`);
    const leave = noteOf(outcome, 'leave');
    const next = activations(outcome.history).find((e) => e.t > leave);
    const limit = outcome.params.activationInterval / 2;
    if (!next) unmet.push('nobody activated after the leave');
    else if (Number(next.t - leave) / 1e6 > limit) {
      unmet.push(`the handover took ${(Number(next.t - leave) / 1e6).toFixed(1)} ms, more than A/2 = ${limit} ms`);
    }
    return unmet;
  },
};

const killActive: Scenario = {
  name: 'kill-active',
  title: 'SIGKILL of the active: the next in line prepares, then takes over once the dead lease lapsed',
  criteria: 'another member activates after the kill, preceded by a prepare (P > 0)',
  params: { ...INTERVALS, preparationInterval: 400 },
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    run.note('kill');
    await run.kill(victim);
    await run.untilConverged(run.settleMs);
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    const unmet = someoneElseActivated(outcome, victim, 'kill');
    const kill = noteOf(outcome, 'kill');
    const next = activations(outcome.history).find((e) => e.t > kill);
    if (next) {
      const own = outcome.history.filter(
        (e) => e.member === next.member && e.t <= next.t && ['prepare', 'activate', 'deactivate'].includes(e.type),
      );
      if (own.at(-2)?.type !== 'prepare') unmet.push(`${next.member} activated without a prepare before it`);
    }
    return unmet;
  },
};

const stopActive: Scenario = {
  name: 'sigstop-active',
  title: 'SIGSTOP of the active for 2A: a standby takes over; the stopped member stops believing at its deadline',
  criteria: 'another member activates while it is stopped; after SIGCONT it deactivates (lease-lost)',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    run.note('stop');
    await run.pause(victim, 2 * run.A);
    run.note('cont');
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    // A stopped process records nothing: its deactivation comes after SIGCONT, however close
    // to the harness's own note of it.
    return [...someoneElseActivated(outcome, victim, 'stop', 'cont'), ...demotedItself(outcome, victim, 'stop')];
  },
};

const stallActive: Scenario = {
  name: 'stall-active',
  title: 'event-loop stall of 1.5A inside the active’s critical section: the sink refuses the stale write',
  criteria:
    'another member activates during the stall; the write stamped before the stall reaches the sink after the new epoch and is refused',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    run.note('stall');
    await run.stall(victim, 1.5 * run.A);
    run.note('stall-end');
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    const stall = noteOf(outcome, 'stall');
    const refused = outcome.history.some((e) => e.type === 'sink-reject' && e.member === victim && e.t > stall);
    return [
      ...someoneElseActivated(outcome, victim, 'stall', 'stall-end'),
      ...demotedItself(outcome, victim, 'stall'),
      ...(refused ? [] : [`the sink refused no write from ${victim} after the stall`]),
    ];
  },
};

const blackholeActive: Scenario = {
  name: 'blackhole-active',
  title: 'blackhole of an active’s link for 2A (sockets stay open): it demotes itself before the standby activates',
  criteria: 'the cut-off active deactivates itself (lease-lost) during the blackhole; the standby activates during it',
  params: { ...INTERVALS, activeGoal: 2 },
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    run.note('blackhole');
    await run.during(
      `blackhole ${victim.id}`,
      2 * run.A,
      () => run.link(victim).blackhole(true),
      () => run.link(victim).blackhole(false),
    );
    run.note('heal');
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    return [
      ...demotedItself(outcome, victim, 'blackhole', 'heal'),
      ...someoneElseActivated(outcome, victim, 'blackhole', 'heal'),
    ];
  },
};

const delayActive: Scenario = {
  name: 'delay-active',
  title: 'link delay of 0.3A, then 0.6A (± 0.05A jitter), on the active: it loses its lease safely',
  criteria: 'the delayed active deactivates itself (lease-lost): no renewal can keep a lease over such a link',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    const link = run.link(victim);
    const jitter = 0.05 * run.A;
    const first = `delay ${victim.id} ${0.3 * run.A}±${jitter} ms`;
    const second = `delay ${victim.id} ${0.6 * run.A}±${jitter} ms`;
    run.note('delay');
    await run.fault(first, () => link.setDelay(0.3 * run.A, jitter));
    await run.sleep(2 * run.A);
    // The second phase opens before the first closes: one fault window.
    await run.fault(second, () => link.setDelay(0.6 * run.A, jitter));
    await run.heal(first);
    await run.sleep(2 * run.A);
    // Bytes already on the slow link keep their schedule: the fault ends when they are through.
    await run.heal(second, async () => {
      link.heal();
      await run.sleep(0.6 * run.A + jitter);
    });
    run.note('heal');
  },
  verify(outcome) {
    return demotedItself(outcome, victimOf(outcome), 'delay', 'heal');
  },
};

const pubsubKilled: Scenario = {
  name: 'pubsub-killed',
  title: 'pub/sub connections killed during a preemption: members catch up by renewing (S7)',
  criteria: 'the handover completes: the old active deactivates (preempted), then the new top member activates',
  params: INTERVALS,
  // The actives' deactivate handlers take a while: the challenger must wait for them (rule 12).
  members: TRIO.map((m) => ({ ...m, deactivateMs: 200 })),
  async run(run) {
    const active = theActive(run);
    const challenger = run.member('c');
    run.note('preempt');
    // The weight change announces the preemption; the kills race the announcements.
    const raised = run.setWeight(challenger, 40);
    const kill = () => run.admin('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await run.fault('CLIENT KILL TYPE pubsub', kill);
    await run.heal('CLIENT KILL TYPE pubsub');
    await run.sleep(run.H / 2);
    await run.fault('CLIENT KILL TYPE pubsub (again)', kill);
    await run.heal('CLIENT KILL TYPE pubsub (again)');
    await raised;
    await run.untilConverged(run.settleMs);
    if (active.id === challenger.id) run.unmet('the challenger was already active');
  },
  verify(outcome) {
    const preempt = noteOf(outcome, 'preempt');
    const victim = victimOf(outcome);
    const demoted = deactivations(outcome.history).find(
      (e) => e.member === victim && e.reason === 'preempted' && e.t > preempt,
    );
    const promoted = activations(outcome.history).find((e) => e.member === 'c' && e.t > preempt);
    if (!demoted || !promoted)
      return [`the preemption did not complete (deactivate: ${!!demoted}, activate: ${!!promoted})`];
    return demoted.t < promoted.t ? [] : ['c activated before the old active deactivated'];
  },
};

/**
 * A slow link with wide jitter: a round trip takes from 0.2 s to 3.8 s, so that some
 * re-subscriptions (after a pub/sub kill) are answered long after the connection's ready
 * check. The regression test of finding F5: with the 2 s command timeout the subscriber had
 * then, a late re-subscription rejected unhandled and ended the member process (2 runs of 5).
 */
const SLOW_LINK = Object.freeze({ delayMs: 1000, jitterMs: 900 });
const RESUBSCRIPTIONS = 6;

const resubscribeSlow: Scenario = {
  name: 'resubscribe-slow',
  title: `pub/sub connections killed ${RESUBSCRIPTIONS} times while the active’s link is slow (${SLOW_LINK.delayMs} ± ${SLOW_LINK.jitterMs} ms each way): late re-subscriptions do not crash it`,
  criteria: 'no member process exits on its own; the slow active deactivates itself',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    const link = run.link(victim);
    const slow = `delay ${victim.id} ${SLOW_LINK.delayMs}±${SLOW_LINK.jitterMs} ms`;
    run.note('slow');
    await run.fault(slow, () => link.setDelay(SLOW_LINK.delayMs, SLOW_LINK.jitterMs));
    for (let i = 1; i <= RESUBSCRIPTIONS; i++) {
      await run.fault(`CLIENT KILL TYPE pubsub (${i})`, () => run.admin('CLIENT', 'KILL', 'TYPE', 'pubsub'));
      await run.heal(`CLIENT KILL TYPE pubsub (${i})`);
      // Ready check and re-subscription, each a round trip over the slow link, retried as needed.
      await run.sleep(5000);
    }
    // Bytes already on the slow link keep their schedule: the fault ends when they are through.
    await run.heal(slow, async () => {
      link.heal();
      await run.sleep(SLOW_LINK.delayMs + SLOW_LINK.jitterMs);
    });
    run.note('heal');
  },
  verify(outcome) {
    return demotedItself(outcome, victimOf(outcome), 'slow', 'heal');
  },
};

const stopRedis: Scenario = {
  name: 'sigstop-redis',
  title: 'SIGSTOP of redis-server for 2A: every active demotes itself before its lease could lapse',
  criteria: 'every member active at the pause deactivates (lease-lost) before the resume',
  params: { ...INTERVALS, activeGoal: 2 },
  members: TRIO,
  async run(run) {
    for (const active of run.actives()) run.victim(active);
    run.note('pause');
    await run.during(
      'SIGSTOP redis-server',
      2 * run.A,
      () => run.redis.pause(),
      () => run.redis.resume(),
    );
    run.note('resume');
  },
  verify(outcome) {
    return outcome.victims.flatMap((v) => demotedItself(outcome, v, 'pause', 'resume'));
  },
};

const restartEmpty: Scenario = {
  name: 'redis-restart-empty',
  title:
    'redis-server SIGKILLed and restarted empty after every lease lapsed, the actives gone with it: quarantine, then larger epochs for members that never held the old ones',
  criteria:
    'no activation earlier than A after the restart began (S6 quarantine); every epoch after it exceeds every epoch before, also those granted to members that never held an old epoch',
  params: { ...INTERVALS, activeGoal: 2 },
  members: TRIO,
  async run(run) {
    // A group that has lived a while: its version is well above the few changes that follow
    // a restart (these weight changes move no slot).
    const c = run.member('c');
    for (let weight = 11; weight <= 16; weight++) await run.setWeight(c, weight);
    await run.sleep(run.settleMs);
    run.note('kill');
    await run.fault('SIGKILL redis-server', () => run.redis.kill('SIGKILL'));
    // The actives die with it: nobody who remembers an old epoch is granted one after the
    // restart, so an epoch that does not exceed the old ones cannot hide behind a member's memory.
    for (const active of run.actives()) await run.kill(active);
    await run.sleep(1.5 * run.A);
    run.note('restart');
    await run.heal('SIGKILL redis-server', () => run.redis.restart({ keepData: false }));
    await run.spawn({ id: 'd', weight: 40 });
  },
  verify(outcome) {
    const kill = noteOf(outcome, 'kill');
    const restart = noteOf(outcome, 'restart');
    const A = BigInt(outcome.params.activationInterval) * 1_000_000n;
    const before = activations(outcome.history).filter((e) => e.t < kill);
    const after = activations(outcome.history).filter((e) => e.t > kill);
    const highest = before.reduce((max, e) => (BigInt(e.epoch) > max ? BigInt(e.epoch) : max), 0n);
    const heldOld = new Set(before.map((e) => e.member));
    return [
      ...after
        .filter((e) => e.t < restart + A)
        .map((e) => `${e.member} activated ${(Number(e.t - restart) / 1e6).toFixed(1)} ms after the restart began`),
      ...after.filter((e) => BigInt(e.epoch) <= highest).map((e) => `${e.member} reused an old epoch ${e.epoch}`),
      ...(after.some((e) => !heldOld.has(e.member))
        ? []
        : ['nobody that never held an old epoch activated after the restart: the run proves nothing']),
    ];
  },
};

const clockDrift: Scenario = {
  name: 'clock-drift',
  title: `member clocks drifting at the bound (rates ${SLOW_CLOCK} and ${FAST_CLOCK}): the slow active, cut off, stops believing in time`,
  criteria: 'the cut-off active (slow clock) deactivates itself; a standby (fast clock) activates while it is cut off',
  params: INTERVALS,
  members: [
    { id: 'a', weight: 30, clockRate: SLOW_CLOCK },
    { id: 'b', weight: 20, clockRate: FAST_CLOCK },
    { id: 'c', weight: 10, clockRate: SLOW_CLOCK },
  ],
  async run(run) {
    const victim = theActive(run);
    const link = run.link(victim);
    run.note('cut');
    // Connections reset and new ones refused: renewals fail at once, the lease runs out.
    await run.during(
      `reset + refuse ${victim.id}`,
      2 * run.A,
      () => {
        link.refuse(true);
        link.reset();
      },
      () => link.refuse(false),
    );
    run.note('heal');
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    return [...demotedItself(outcome, victim, 'cut', 'heal'), ...someoneElseActivated(outcome, victim, 'cut', 'heal')];
  },
};

/** Intervals long enough that a prepare handler can hold a grant back while Redis restarts. */
const SLOW_INTERVALS: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 200,
  preparationInterval: 1000,
  activationInterval: 2000,
});

/**
 * Found by churn as finding F4 (docs/RELIABILITY.md): a grant that its member has not taken yet
 * when Redis loses its data must not be delivered afterwards — its epoch may already be
 * superseded. Here the grant waits behind the member's own prepare handler (an application
 * warming up), which is where a slow application holds it in practice.
 */
const staleGrant: Scenario = {
  name: 'stale-grant',
  title: 'Redis restarted empty while a granted member is still preparing: the old grant is void',
  criteria:
    'the set-up happens (a is granted and still preparing when Redis dies); every activation after the loss carries an epoch above every epoch granted before it',
  params: SLOW_INTERVALS,
  members: [
    { id: 'a', weight: 5 },
    { id: 'b', weight: 20 },
    { id: 'c', weight: 10 },
  ],
  async run(run) {
    const [a, c] = [run.member('a'), run.member('c')];
    // A group that has lived a while (see redis-restart-empty).
    for (let weight = 11; weight <= 16; weight++) await run.setWeight(c, weight);
    await run.sleep(run.settleMs);
    run.victim(a);
    // a's next prepare outlasts the activation interval (the library abandons it at A).
    a.send({ cmd: 'slow-prepare', ms: 2 * run.A });
    const prepared = a.reported('prepare').length;
    run.note('preempt');
    await run.setWeight(a, 30); // b is preempted; once it released, Redis grants a, which prepares
    await a.until(() => a.reported('prepare').length > prepared, 'a to prepare for its grant', 3 * run.A, run.signal);
    const epoch = /\d+/.exec(await run.admin('HGET', `understudy:{${run.group}}:config`, 'epoch'))?.[0] ?? '0';
    run.notes.set('last-epoch-granted', BigInt(epoch));
    run.note('kill');
    await run.fault('SIGKILL redis-server, restart empty', () => run.redis.kill('SIGKILL'));
    await run.sleep(run.A / 4);
    await run.heal('SIGKILL redis-server, restart empty', () => run.redis.restart({ keepData: false }));
  },
  verify(outcome) {
    const preempt = noteOf(outcome, 'preempt');
    const kill = noteOf(outcome, 'kill');
    const granted = noteOf(outcome, 'last-epoch-granted');
    const early = activations(outcome.history).some((e) => e.member === 'a' && between(e.t, preempt, kill));
    if (early) return ['a activated before Redis was killed: the set-up did not happen, the run proves nothing'];
    return activations(outcome.history)
      .filter((e) => e.t > kill && BigInt(e.epoch) <= granted)
      .map((e) => `${e.member} activated epoch ${e.epoch}, granted before Redis lost its data (last grant ${granted})`);
  },
};

const EXPIRING_KEYS = 20_000;

const expiringKeys: Scenario = {
  name: 'expiring-keys',
  title: `${EXPIRING_KEYS.toLocaleString('en')} unrelated expiring keys while the active dies: failover does not wait for expiry`,
  criteria: 'the keys are there and expiring at the kill; another member takes over (within the settling time, rule 4)',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    // TTLs from A/2 to 20A, so that keys expire throughout the failover. Loading them blocks
    // Redis for a moment (in batches, but a loaded machine is slow): a fault of its own.
    const batch = 1000;
    await run.fault(`load ${EXPIRING_KEYS} expiring keys`);
    for (let first = 1; first <= EXPIRING_KEYS; first += batch) {
      const lua = `for i = ${first}, ${first + batch - 1} do redis.call('SET', 'unrelated:' .. i, 'x', 'PX', ${run.A / 2} + (i * 7919) % ${20 * run.A}) end return 1`;
      await run.admin('EVAL', lua, '0');
    }
    await run.heal(`load ${EXPIRING_KEYS} expiring keys`);
    await run.sleep(run.settleMs);
    const keys = Number(/\d+/.exec(await run.admin('DBSIZE'))?.[0] ?? 0);
    if (keys < EXPIRING_KEYS / 2) run.unmet(`only ${keys} keys at the kill`);
    const victim = theActive(run);
    run.note('kill');
    await run.kill(victim);
    await run.untilConverged(run.settleMs);
  },
  verify(outcome) {
    return someoneElseActivated(outcome, victimOf(outcome), 'kill');
  },
};

/** The fixed scenarios, each a fault and its pass criteria. */
export const FIXED_SCENARIOS: readonly Scenario[] = [
  noFault,
  killActive,
  stopActive,
  stallActive,
  blackholeActive,
  delayActive,
  pubsubKilled,
  resubscribeSlow,
  stopRedis,
  restartEmpty,
  clockDrift,
  expiringKeys,
  staleGrant,
];

const CHURN_PARAMS: GroupIntervals = { ...INTERVALS, activeGoal: 2 };

/**
 * The Sentinel and Cluster scenarios CI runs: all five add almost two minutes to a profile of
 * under three (docs/RELIABILITY.md §5). These three cover a lost master (quarantine on the
 * promoted replica), a stale master (F8, F10) and MOVED / ASK; the soak runs all five.
 */
const CI_HA_SCENARIOS = new Set(['sentinel-kill-master', 'sentinel-sigstop-master', 'cluster-migrate-slot']);

/** The new fault kinds CI runs (about a minute together); the soak runs them all. */
const CI_FAULT_SCENARIOS = new Set([
  'lagging-replica',
  'lost-key',
  'release-lost',
  'forged-announcements',
  'same-id-restart',
]);

/**
 * The feed and queue scenarios CI runs (about 90 s together): a kill inside onMessage, workers
 * killed and frozen mid-task, a handler slower than completeTime, a Redis restart with tasks in
 * flight, keys of the queue deleted or restored from an older copy; the soak adds the failover of
 * a replicated pair.
 */
const CI_MESSAGE_SCENARIOS = new Set([
  'feed-kill-mid-message',
  'queue-worker-faults',
  'queue-slow-handler',
  'queue-redis-restart',
  'queue-lost-key',
  'queue-stale-key',
]);

/**
 * The CI profile's scenarios: every fixed one, some of the new fault kinds, three on Sentinel
 * and Cluster, five of the feed and queues, then churn. CI runs each once.
 */
export const SCENARIOS: readonly Scenario[] = [
  ...FIXED_SCENARIOS,
  ...FAULT_SCENARIOS.filter((s) => CI_FAULT_SCENARIOS.has(s.name)),
  ...HA_SCENARIOS.filter((s) => CI_HA_SCENARIOS.has(s.name)),
  ...[...FEED_SCENARIOS, ...QUEUE_SCENARIOS].filter((s) => CI_MESSAGE_SCENARIOS.has(s.name)),
  churnScenario(CHURN_PARAMS, 'ci'),
];

/** Every scenario, for the soak's rotation: the fixed ones, the new fault kinds, the Sentinel and Cluster ones, the feed and queues, quorum mode, then churn. */
export const SOAK_SCENARIOS: readonly Scenario[] = [
  ...FIXED_SCENARIOS,
  ...FAULT_SCENARIOS,
  ...HA_SCENARIOS,
  ...FEED_SCENARIOS,
  ...QUEUE_SCENARIOS,
  ...QUORUM_SCENARIOS,
  churnScenario(CHURN_PARAMS, 'soak'),
];

/**
 * The quorum scenarios CI runs (test/quorum-faults.test.ts, its own file so that it runs beside
 * fault-injection.test.ts on the other core): every one; the soak runs them in its rotation.
 */
export const CI_QUORUM_SCENARIOS: readonly Scenario[] = QUORUM_SCENARIOS;

/** The seed of the CI profile. */
export const CI_SEED = 20_251_129;
