// The quorum-mode scenarios of the reliability suite (docs/RELIABILITY.md §7): one group over
// K = 3 independent servers (DESIGN §9), each member reaching each server through a chaos
// proxy of its own. The faults are `run.quorumFaults`' (a server killed, frozen or restarted
// empty — one, or a majority —, one server's links slowed or cut for some members) and member
// clocks drifting at ρ and beyond it. The history checker judges safety as everywhere (rule 1:
// never more believers than the goal; rule 2: epochs strictly increase; rule 18: every server
// accepts only epochs above its own floor; rule 11 per server); each scenario's `verify` says
// what must have happened for the run to show something.
import type { GroupIntervals, MemberSpec, Scenario, ScenarioOutcome } from '../../packages/testkit/src/index.js';
import { clockRateAt } from '../../packages/testkit/src/index.js';
import { activations, between, deactivations, noteOf, someoneElseActivated, theActive, victimOf } from './reading.js';

/**
 * H = 200 ms, A = 1500 ms: every member renews on the three servers in parallel, so a dead or
 * frozen one costs a timed-out request per renewal (0.8 H), never a decision. Longer than the
 * single-server scenarios' 150 / 900: each member's links to all three servers run through
 * proxies in the harness process, and on a loaded 2-core machine (CI beside a soak) a stall of
 * that process timed out the renewals on two healthy servers for 0.7 s, more than A = 900 ms
 * leaves (a lease lost, no safety rule broken).
 */
const QUORUM: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 200,
  preparationInterval: 0,
  activationInterval: 1500,
});

/** ρ of the members (MEMBER_DEFAULTS.clockDrift). */
const RHO = 0.01;

const TRIO: readonly MemberSpec[] = [
  { id: 'a', weight: 30 },
  { id: 'b', weight: 20 },
  { id: 'c', weight: 10 },
];

const base = { topology: 'quorum', quorum: { servers: 3 }, params: QUORUM, members: TRIO } as const;

// ---- reading an outcome ---------------------------------------------------------------------

/** "Nobody deactivated between `from` and `to` (except on leave)": the active kept its slot. */
function noDeactivation(outcome: ScenarioOutcome, from: string, to?: string): string[] {
  const start = noteOf(outcome, from);
  const end = to === undefined ? undefined : noteOf(outcome, to);
  return deactivations(outcome.history)
    .filter((e) => e.reason !== 'leave' && between(e.t, start, end))
    .map((e) => `${e.member} deactivated (${e.reason}, epoch ${e.epoch}) between '${from}' and '${to ?? 'the end'}'`);
}

/** "`member` activated nowhere between `from` and `to`." */
function neverActivated(outcome: ScenarioOutcome, member: string, from: string, to: string): string[] {
  const start = noteOf(outcome, from);
  const end = noteOf(outcome, to);
  return activations(outcome.history)
    .filter((e) => e.member === member && between(e.t, start, end))
    .map((e) => `${member} activated (epoch ${e.epoch}) between '${from}' and '${to}'`);
}

/** "`member` reported the advisory `code` between `from` and `to`." */
function advised(outcome: ScenarioOutcome, member: string, code: string, from: string, to?: string): string[] {
  const start = noteOf(outcome, from);
  const end = to === undefined ? undefined : noteOf(outcome, to);
  const seen = outcome.members
    .filter((m) => m.id === member)
    .flatMap((m) => m.reported('advisory'))
    .some((a) => a.code === code && between(a.at, start, end));
  return seen ? [] : [`${member} never reported ${code} between '${from}' and '${to ?? 'the end'}'`];
}

/** "Somebody activated between `from` and `to`." */
function someoneActivated(outcome: ScenarioOutcome, from: string, to?: string): string[] {
  const start = noteOf(outcome, from);
  const end = to === undefined ? undefined : noteOf(outcome, to);
  return activations(outcome.history).some((e) => between(e.t, start, end))
    ? []
    : [`nobody activated between '${from}' and '${to ?? 'the end'}'`];
}

// ---- the scenarios --------------------------------------------------------------------------

const killOneServer: Scenario = {
  ...base,
  name: 'quorum-kill-server',
  title: 'quorum: SIGKILL of one server of three for 3A, then back empty: a minority lost, the active keeps its slot',
  criteria: 'no deactivation from the kill to the end; the active before the kill is the active at the end',
  async run(run) {
    const active = theActive(run);
    run.note('kill');
    await run.quorumFaults.killServer(0);
    await run.sleep(3 * run.A);
    await run.quorumFaults.restartServer(0);
    run.note('back');
    await run.sleep(run.settleMs);
    if (!active.active) run.unmet(`${active.id} is not active at the end`);
  },
  verify: (outcome) => noDeactivation(outcome, 'kill'),
};

const freezeOneServer: Scenario = {
  ...base,
  name: 'quorum-sigstop-server',
  title: 'quorum: SIGSTOP of one server of three for 3A, then SIGCONT: its sockets hang, the active keeps its slot',
  criteria: 'no deactivation from the freeze to the end; the active before the freeze is the active at the end',
  async run(run) {
    const active = theActive(run);
    run.note('stop');
    await run.quorumFaults.pauseServer(1, 3 * run.A);
    run.note('cont');
    await run.sleep(run.settleMs);
    if (!active.active) run.unmet(`${active.id} is not active at the end`);
  },
  verify: (outcome) => noDeactivation(outcome, 'stop'),
};

const majorityLoss: Scenario = {
  ...base,
  name: 'quorum-majority-loss',
  title: 'quorum: SIGKILL of two servers of three for 3A, then back empty: nobody may act, then the group recovers',
  criteria:
    'the active deactivates (lease-lost) and reports QUORUM_LOST while the majority is down; nobody activates until it is back; someone activates after it returns',
  async run(run) {
    theActive(run);
    run.note('kill');
    const lost = await run.quorumFaults.killMajority();
    await run.sleep(3 * run.A);
    run.note('return');
    await run.quorumFaults.restartServers(lost);
    await run.untilConverged(run.settleMs + run.A);
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    const lostLease = deactivations(outcome.history).some(
      (e) =>
        e.member === victim &&
        e.reason === 'lease-lost' &&
        between(e.t, noteOf(outcome, 'kill'), noteOf(outcome, 'return')),
    );
    return [
      ...(lostLease ? [] : [`${victim} did not deactivate (lease-lost) while the majority was down`]),
      ...advised(outcome, victim, 'QUORUM_LOST', 'kill', 'return'),
      ...TRIO.flatMap((m) => neverActivated(outcome, m.id, 'kill', 'return')),
      ...someoneActivated(outcome, 'return'),
    ];
  },
};

const heaviestOnOneServer: Scenario = {
  ...base,
  name: 'quorum-heaviest-one-server',
  title: 'quorum: the heaviest member, active, is cut from two servers of three for 4A: it reaches only one',
  criteria:
    'it deactivates (lease-lost) and reports QUORUM_LOST; the next member activates; while cut it never activates again and preempts nobody',
  async run(run) {
    const heaviest = theActive(run);
    run.note('cut');
    await run.quorumFaults.blackholeLink(1, 'both', { members: [heaviest.id] });
    await run.quorumFaults.blackholeLink(2, 'both', { members: [heaviest.id] });
    // Its lease lapses within A; then 3A in which it must not come back.
    await run.sleep(4 * run.A);
    run.note('heal');
    await run.quorumFaults.healLink(1);
    await run.quorumFaults.healLink(2);
    await run.untilConverged(run.settleMs + run.A);
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    const cut = noteOf(outcome, 'cut');
    const heal = noteOf(outcome, 'heal');
    const lostLease = deactivations(outcome.history).some(
      (e) => e.member === victim && e.reason === 'lease-lost' && between(e.t, cut, heal),
    );
    // Its own deactivation aside, nobody is preempted (or loses a lease) while it is cut.
    const preempted = deactivations(outcome.history)
      .filter((e) => e.member !== victim && e.reason !== 'leave' && between(e.t, cut, heal))
      .map((e) => `${e.member} deactivated (${e.reason}) while ${victim} reached one server only`);
    return [
      ...(lostLease ? [] : [`${victim} did not deactivate (lease-lost) once cut from a majority`]),
      ...advised(outcome, victim, 'QUORUM_LOST', 'cut', 'heal'),
      ...someoneElseActivated(outcome, victim, 'cut', 'heal'),
      ...neverActivated(outcome, victim, 'cut', 'heal'),
      ...preempted,
    ];
  },
};

const triangle: Scenario = {
  ...base,
  name: 'quorum-triangle',
  title:
    'quorum, N = 2: three members each reach a different pair of the three servers for 5A (the "triangle"): never three actives',
  criteria: 'somebody is active through the partition (checked at its end); rule 1 (never more than 2) judges the rest',
  params: { ...QUORUM, activeGoal: 2 },
  async run(run) {
    run.note('split');
    // a misses server 2, b server 0, c server 1: every pair of members shares exactly one server.
    await run.quorumFaults.blackholeLink(2, 'both', { members: ['a'] });
    await run.quorumFaults.blackholeLink(0, 'both', { members: ['b'] });
    await run.quorumFaults.blackholeLink(1, 'both', { members: ['c'] });
    await run.sleep(5 * run.A);
    const during = run.actives().length;
    if (during === 0) run.unmet('nobody was active at the end of the partition');
    if (during > 2) run.unmet(`${during} members reported themselves active at the end of the partition`);
    run.note('heal');
    for (const i of [0, 1, 2]) await run.quorumFaults.healLink(i);
    await run.untilConverged(run.settleMs + run.A);
  },
};

const sharedRestartsEmpty: Scenario = {
  ...base,
  name: 'quorum-shared-restart-empty',
  title:
    'quorum: the active reaches servers 0 and 1, the next member 1 and 2; the shared server 1 restarts empty, then the active dies',
  criteria:
    'somebody activates after the restart and again after the kill (with a higher epoch: rules 2 and 18 judge the epochs)',
  async run(run) {
    const active = theActive(run);
    const next = run.member(active.id === 'a' ? 'b' : 'a');
    await run.quorumFaults.blackholeLink(2, 'both', { members: [active.id] });
    await run.quorumFaults.blackholeLink(0, 'both', { members: [next.id, 'c'] });
    await run.sleep(2 * run.A);
    run.note('restart');
    await run.quorumFaults.restartEmpty(1);
    await run.sleep(2 * run.A);
    run.note('kill');
    await run.kill(run.victim(run.actives()[0] ?? active));
    await run.sleep(2 * run.A);
    for (const i of [0, 2]) await run.quorumFaults.healLink(i);
    await run.untilConverged(run.settleMs + run.A);
  },
  verify: (outcome) => someoneElseActivated(outcome, victimOf(outcome), 'kill'),
};

const majorityRestartsEmpty: Scenario = {
  ...base,
  name: 'quorum-majority-restart-empty',
  title: 'quorum: two servers of three restart empty at once, then the active dies: epochs still grow',
  criteria:
    'another member activates after the kill, with an epoch above every earlier one (rules 2 and 18: the surviving server and the claims carry the floor)',
  async run(run) {
    await run.quorumFaults.restartMajorityEmpty([0, 1]);
    await run.sleep(2 * run.A);
    run.note('kill');
    await run.kill(theActive(run));
    await run.untilConverged(run.settleMs + run.A);
  },
  verify(outcome) {
    const kill = noteOf(outcome, 'kill');
    const before = activations(outcome.history).filter((e) => e.t < kill);
    const after = activations(outcome.history).filter((e) => e.t > kill);
    const top = before.reduce((m, e) => (BigInt(e.epoch) > m ? BigInt(e.epoch) : m), 0n);
    return [
      ...someoneElseActivated(outcome, victimOf(outcome), 'kill'),
      ...after
        .filter((e) => BigInt(e.epoch) <= top)
        .map((e) => `${e.member} activated with epoch ${e.epoch}, not above ${top} from before the restart`),
    ];
  },
};

const slowLink: Scenario = {
  ...base,
  name: 'quorum-slow-link',
  title:
    'quorum: every link to server 2 is slowed by 300 ± 100 ms (beyond the 0.8 H renewal timeout), then the active dies',
  criteria:
    'no deactivation from the slowdown to the kill; another member activates after the kill within A + H + 0.5 s (the two fast servers decide)',
  async run(run) {
    const active = theActive(run);
    run.note('slow');
    await run.quorumFaults.slowLink(2, 300, 100);
    await run.sleep(3 * run.A);
    run.note('kill');
    await run.kill(run.victim(active));
    await run.untilConverged(run.settleMs + run.A);
    await run.quorumFaults.healLink(2);
  },
  verify(outcome) {
    const kill = noteOf(outcome, 'kill');
    const next = activations(outcome.history).find((e) => e.t > kill);
    const limitMs = outcome.params.activationInterval + outcome.params.heartbeatInterval + 500;
    const took = next === undefined ? undefined : Number(next.t - kill) / 1e6;
    return [
      ...noDeactivation(outcome, 'slow', 'kill'),
      ...someoneElseActivated(outcome, victimOf(outcome), 'kill'),
      ...(took !== undefined && took > limitMs
        ? [`the takeover took ${took.toFixed(0)} ms, more than A + H + 0.5 s = ${limitMs} ms`]
        : []),
    ];
  },
  measure(outcome) {
    const kill = outcome.notes.get('kill');
    const next = kill === undefined ? undefined : activations(outcome.history).find((e) => e.t > kill);
    return { takeoverMs: next && kill !== undefined ? Number(next.t - kill) / 1e6 : undefined };
  },
};

const standbysRace: Scenario = {
  ...base,
  name: 'quorum-standbys-race',
  title: 'quorum: the active dies while the lightest standby becomes the heaviest: two standbys race for the one slot',
  criteria:
    'exactly the new heaviest (c) holds the slot at the end; somebody other than the victim activated after the kill',
  async run(run) {
    const active = theActive(run);
    run.note('kill');
    await Promise.all([run.kill(active), run.setWeight(run.member('c'), 25)]);
    await run.untilConverged(run.settleMs + run.A);
  },
  verify: (outcome) => someoneElseActivated(outcome, victimOf(outcome), 'kill'),
};

/** The active loses every server for 3A (its links blackholed both ways), so that it believes until its own deadline. */
function driftScenario(name: string, rate: number, within: boolean): Scenario {
  return {
    ...base,
    name,
    title: within
      ? `quorum: the active's clock runs slow at ρ (rate ${rate}) and it is cut from every server for 3A`
      : `quorum: the active's clock runs slow at 50ρ (rate ${rate}), beyond the model, and it is cut from every server for 3A`,
    criteria: within
      ? 'another member activates while it is cut; the cut one deactivates itself (lease-lost); no violation'
      : 'another member activates while it is cut; whatever overlap follows is marked outside the model, never a failure',
    members: [{ id: 'a', weight: 30, clockRate: rate }, ...TRIO.slice(1)],
    async run(run) {
      const victim = run.victim(run.member('a'));
      await run.until(() => victim.active, 'a to be active', run.settleMs);
      run.note('cut');
      for (const i of [0, 1, 2]) await run.quorumFaults.blackholeLink(i, 'both', { members: [victim.id] });
      await run.sleep(3 * run.A);
      run.note('heal');
      for (const i of [0, 1, 2]) await run.quorumFaults.healLink(i);
      await run.untilConverged(run.settleMs + run.A);
    },
    verify: (outcome) => someoneElseActivated(outcome, victimOf(outcome), 'cut', 'heal'),
  };
}

const driftAtRho = driftScenario('quorum-drift-at-rho', clockRateAt(RHO, 1, 'slow'), true);
const driftBeyondRho = driftScenario('quorum-drift-beyond-rho', clockRateAt(RHO, 50, 'slow'), false);

/** Every quorum scenario, for the soak. */
export const QUORUM_SCENARIOS: readonly Scenario[] = [
  killOneServer,
  freezeOneServer,
  majorityLoss,
  heaviestOnOneServer,
  triangle,
  sharedRestartsEmpty,
  majorityRestartsEmpty,
  slowLink,
  standbysRace,
  driftAtRho,
  driftBeyondRho,
];

/** Scenarios whose run must show a violation marked outside the model (a clock beyond ρ). */
export const OUTSIDE_MODEL_SCENARIOS: ReadonlySet<string> = new Set([driftBeyondRho.name]);
