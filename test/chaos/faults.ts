// The fault kinds of issue 13 (docs/RELIABILITY.md §2, §4): lost writes of a lagging replica,
// lost keys, stale and forged announcements, members that come back with the same id or with
// other parameters, aborts inside join / setWeight / leave, a slow link that is then cut, and
// the split brain of a partitioned old master under Sentinel; and, added since, a release lost
// while Redis still holds the lease, and a restart with the data kept followed by the active's
// death (F29). Each one is a fault a service running Redis lives with; all but slow-then-cut and
// release-lost made the core of 54619f0 break a rule (the finding each one shows, F13–F18 of
// RELIABILITY.md §7, is named where the scenario checks it).
import {
  AnnouncementRecorder,
  type GroupIntervals,
  type MemberProcess,
  type MemberSpec,
  type RedisServer,
  redisInfo,
  type Scenario,
  type ScenarioOutcome,
  type ScenarioRun,
  SENTINEL_REPLICATION,
} from '../../packages/testkit/src/index.js';
import { activations, between, demotedItself, noteOf, someoneElseActivated, theActive, victimOf } from './reading.js';

/** The fixed scenarios' intervals (scenarios.ts). */
const INTERVALS: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 150,
  preparationInterval: 0,
  activationInterval: 900,
});

/** Long enough that a prepare handler can hold a grant back while the replica falls behind. */
const SLOW_INTERVALS: GroupIntervals = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 200,
  preparationInterval: 1000,
  activationInterval: 2000,
});

/** Three members of weights 30, 20 and 10: the cast of most scenarios. */
export const TRIO: readonly MemberSpec[] = [
  { id: 'a', weight: 30 },
  { id: 'b', weight: 20 },
  { id: 'c', weight: 10 },
];

/** The group's keys (DESIGN §4), each of which a script must miss as lost state (S6). */
export const GROUP_KEYS = ['config', 'members', 'leases', 'rank', 'slots', 'log'] as const;

const ms = (from: bigint, to: bigint) => Number(to - from) / 1e6;

/** Waits for convergence; a group that does not converge is a criterion not met, in `what`'s words. */
async function convergedAfter(run: ScenarioRun, what: string): Promise<void> {
  const limit = run.settleMs + 5 * run.A;
  await run.untilConverged(limit).catch(() => run.unmet(`the group had not converged ${limit} ms after ${what}`));
}

/** A weight no member has now. */
function freshWeight(run: ScenarioRun): number {
  const taken = new Set(run.processes.map((m) => run.weightOf(m)));
  for (;;) {
    const w = run.random.int(1, 99);
    if (!taken.has(w)) return w;
  }
}

// ---- lost writes: a lagging replica promoted ------------------------------------------------

/**
 * A master and its replica, the replication link through a chaos proxy. c, the lowest, is
 * raised to the top: a is preempted, c is granted and prepares behind a slow handler. The
 * replication link is then cut (the replica keeps c's grant and nothing after it); c drops to
 * the bottom again, so it gives its grant back undelivered and a is granted anew and
 * activates. The master dies while a's lease runs, the lagging replica is promoted, and every
 * member's link moves to it. On the replica, c still holds the grant it gave back (F13).
 */
const laggingReplica: Scenario = {
  name: 'lagging-replica',
  title:
    'lagging replica promoted: its replication link cut for a random time while the group hands over, then the master SIGKILLed and the replica promoted',
  criteria:
    'the set-up happens (c was granted and still preparing when the link was cut, a activated after it, the replica lagged at the kill); nothing the replica still holds is delivered',
  params: SLOW_INTERVALS,
  members: TRIO,
  topology: 'replicated',
  slackMs: 1500,
  async run(run) {
    const { A, random } = run;
    const [a, c] = [run.member('a'), run.member('c')];
    run.victim(c);
    const slowPrepare = Math.round(random.between(1.5, 2.5) * A);
    c.send({ cmd: 'slow-prepare', ms: slowPrepare });
    const prepared = c.reported('prepare').length;
    run.note('preempt');
    await run.setWeight(c, 40);
    await c.until(() => c.reported('prepare').length > prepared, 'c to prepare for its grant', 3 * A, run.signal);
    const pair = run.pair;
    // The grant reaches the replica within microseconds; then the link goes dark.
    await run.untilServers(async () => (await pair.lagBytes()) === 0, 'the replica to catch up', 5000);
    run.note('cut');
    await run.fault('replication link cut', () => pair.cut());
    const activated = a.reported('activate').length;
    await run.setWeight(c, 5);
    await a.until(() => a.reported('activate').length > activated, 'a to activate again', 3 * A, run.signal);
    run.note('a-active');
    // Members keep working on the master for a while; the master dies while a's lease runs.
    await run.sleep(random.between(0.1, 0.6) * A);
    const lag = await pair.lagBytes();
    run.notes.set('lag-bytes', BigInt(lag));
    if (lag === 0) run.unmet('the replica was not behind when the master died: the run proves nothing');
    run.note('kill');
    await run.fault(`SIGKILL of the master (port ${pair.master.port}), replica promoted`, async () => {
      await pair.master.kill('SIGKILL');
      await run.promoteReplica();
    });
    run.log(`  the replica on port ${pair.replica.port} took over, ${lag} bytes behind`);
    await run.heal(`SIGKILL of the master (port ${pair.master.port}), replica promoted`);
    await run.heal('replication link cut');
  },
  verify(outcome) {
    const preempt = noteOf(outcome, 'preempt');
    const cut = noteOf(outcome, 'cut');
    const early = activations(outcome.history).some((e) => e.member === 'c' && between(e.t, preempt, cut));
    return early ? ['c activated before the link was cut: the set-up did not happen, the run proves nothing'] : [];
  },
  measure: (outcome) => ({ lagBytes: Number(outcome.notes.get('lag-bytes') ?? 0n) }),
};

// ---- lost keys ------------------------------------------------------------------------------

const LOST_KEY_ROUNDS = 3;

/**
 * One group key deleted (an operator's DEL, a bad script), then, in odd rounds, an active
 * leaves: a script that misses any key must treat the state as lost — quarantine, rebuild —
 * and still hand the slot on (F18: without `rank` the standby was never granted; without
 * `slots` holders were re-granted at once with new epochs). In even rounds a member heavier
 * than all joins during the quarantine instead and nothing else happens: nobody is preempted
 * during it (F21), and the preemption must run once it ends (F25: it never did).
 */
const lostKey: Scenario = {
  name: 'lost-key',
  title: `a random group key DELeted, then an active leaves or a heavier member joins, ${LOST_KEY_ROUNDS} times`,
  criteria:
    'after each DEL nobody activates before A has passed (S6 quarantine), and the group converges after the leave or the join (L1)',
  params: { ...INTERVALS, activeGoal: 2 },
  members: TRIO,
  async run(run) {
    const { A, random } = run;
    for (let round = 1; round <= LOST_KEY_ROUNDS; round++) {
      const kind = random.pick(GROUP_KEYS);
      const description = `DEL ${kind} (${round})`;
      run.note(`del-${round}`);
      await run.fault(description, () => run.admin('DEL', run.key(kind)));
      await run.heal(description);
      await run.sleep(random.between(0.1, 0.8) * A);
      if (round % 2 === 0) {
        const weight = Math.max(...run.processes.map((m) => run.weightOf(m))) + random.int(1, 9);
        run.log(`  n${round} (weight ${weight}) joins during the quarantine`);
        await run.spawn({ id: `n${round}`, weight });
        await convergedAfter(run, `DEL ${kind} and n${round}'s join above every member (F25)`);
        continue;
      }
      const leaving = random.pick(run.actives());
      run.log(`  ${leaving.id} leaves`);
      await run.leave(leaving);
      await convergedAfter(run, `DEL ${kind} and ${leaving.id}'s leave (F18)`);
      await run.spawn({ id: `n${round}`, weight: freshWeight(run) });
      await convergedAfter(run, `n${round} joined`);
    }
  },
  verify(outcome) {
    const A = outcome.params.activationInterval * (1 - 0.01);
    const unmet: string[] = [];
    for (let round = 1; round <= LOST_KEY_ROUNDS; round++) {
      const del = noteOf(outcome, `del-${round}`);
      for (const e of activations(outcome.history).filter((e) => e.t > del && ms(del, e.t) < A)) {
        unmet.push(`${e.member} activated ${ms(del, e.t).toFixed(0)} ms after DEL (${round}): no quarantine (S6)`);
      }
    }
    return unmet;
  },
};

// ---- keys restored from an older copy --------------------------------------------------------

const STALE_KEY_ROUNDS = 3;

/**
 * One group key put back as it was before a leave and a join (an operator restoring a backup of
 * it, a tool copying it back): a copy of a random key (COPY, beside it under the same hash tag),
 * then an active leaves and a new member joins, each converged, then the copy replaces the key.
 * What the key says no longer agrees with the others (a lease or a record of a member that left,
 * none of one that joined, fewer slots), or is older than what the members know (an older config:
 * its version, its seal, its epoch): the scripts must find it as lost state (S6) or set it right.
 * Never more than N active (S1, the checker's rules) and the group converges after each restore.
 */
const staleKey: Scenario = {
  name: 'stale-key',
  title: `a random group key restored from a copy taken before a leave and a join, ${STALE_KEY_ROUNDS} times`,
  criteria: 'the group converges after each restore (L1), with never more than N active (S1)',
  params: { ...INTERVALS, activeGoal: 2 },
  members: TRIO,
  async run(run) {
    const { random } = run;
    for (let round = 1; round <= STALE_KEY_ROUNDS; round++) {
      const kind = random.pick(GROUP_KEYS);
      const key = run.key(kind);
      const copy = `${key}:older`;
      await run.admin('COPY', key, copy, 'REPLACE');
      const leaving = random.pick(run.actives());
      run.log(`  copied ${kind}; ${leaving.id} leaves, s${round} joins`);
      await run.leave(leaving);
      await convergedAfter(run, `${leaving.id}'s leave (${round})`);
      await run.spawn({ id: `s${round}`, weight: freshWeight(run) });
      await convergedAfter(run, `s${round}'s join`);
      const description = `${kind} restored from the copy (${round})`;
      await run.fault(description, async () => {
        await run.admin('COPY', copy, key, 'REPLACE');
        await run.admin('DEL', copy);
      });
      await run.heal(description);
      await convergedAfter(run, description);
    }
  },
};

// ---- a restart with the data kept, then the active dies ----------------------------------------

const RESTART_KILL_ROUNDS = 3;

/**
 * Found by the soak as F29 (RELIABILITY.md §7): redis-server restarts with its data while every
 * member renews on the steady path, which reads no INFO, and the active dies within H of the
 * restart. The restart is a change of server: the group must begin its quarantine (S6) at the
 * first renewal after it, not at the standby's takeover at the dead lease's end, or the takeover
 * waits a second A. Each round: the group settles (steady renewals), Redis restarts with its
 * data, the active is SIGKILLed 0 to H later, and a new member joins for the next round.
 */
const restartKeptKill: Scenario = {
  name: 'restart-kept-kill',
  title: `redis-server restarted with its data while every member renews steadily, then the active SIGKILLed within H, ${RESTART_KILL_ROUNDS} times`,
  criteria:
    'after each kill another member activates within A + H + 0.5 s (the quarantine the restart begins ends by then)',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const { H, random } = run;
    for (let round = 1; round <= RESTART_KILL_ROUNDS; round++) {
      await run.sleep(run.settleMs);
      const victim = theActive(run);
      const description = `restart redis-server, data kept (${round})`;
      await run.fault(description);
      await run.heal(description, () => run.redis.restart({ keepData: true }));
      await run.sleep(random.between(0, 1) * H);
      run.log(`  ${victim.id} killed`);
      run.note(`kill-${round}`);
      await run.kill(victim);
      await convergedAfter(run, `the restart and ${victim.id}'s death (${round})`);
      await run.spawn({ id: `r${round}`, weight: freshWeight(run) });
      await convergedAfter(run, `r${round} joined`);
    }
  },
  verify(outcome) {
    const { activationInterval: A, heartbeatInterval: H } = outcome.params;
    const unmet: string[] = [];
    for (let round = 1; round <= RESTART_KILL_ROUNDS; round++) {
      const kill = noteOf(outcome, `kill-${round}`);
      const next = activations(outcome.history).find((e) => e.t > kill);
      if (!next) unmet.push(`nobody activated after the kill (${round})`);
      else if (ms(kill, next.t) > A + H + 500) {
        unmet.push(
          `${next.member} activated ${ms(kill, next.t).toFixed(0)} ms after the kill (${round}): later than A + H + 0.5 s (F29)`,
        );
      }
    }
    return unmet;
  },
};

// ---- a release lost while Redis still holds the lease ----------------------------------------

/**
 * The active's link is blackholed and its clock steps forward by A: its lease ends on its own
 * clock, it deactivates at its next failed renewal, and its release is lost on the link. The link
 * heals while Redis still holds its lease and lists its slot, and nothing else changes: the
 * member's renewals, steady or full, must get the slot it no longer claims released (its next
 * reply still lists the slot, so it releases again; a full renewal settles it, S6) rather than
 * keep it listed, renewed by the member's own lease, with nobody active.
 */
const releaseLost: Scenario = {
  name: 'release-lost',
  title:
    'the active’s clock steps past its lease while its link is blackholed: it deactivates, its release is lost, the link heals before Redis lets the lease lapse',
  criteria:
    'the victim deactivates itself (lease-lost) before the heal; then, with nothing else changing, the group converges (L1)',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const victim = theActive(run);
    const link = run.link(victim);
    const description = `blackhole ${victim.id}, its clock +A`;
    run.note('cut');
    await run.fault(description, () => {
      link.blackhole(true);
      victim.send({ cmd: 'clock-jump', ms: run.A });
    });
    // Redis holds the lease until about A − H after the cut: the heal comes well before.
    await run
      .until(() => !victim.active, `${victim.id} to deactivate`, run.A / 2)
      .catch(() => run.unmet(`${victim.id} did not deactivate within A/2 of its clock's step`));
    await run.sleep(run.H);
    await run.heal(description, () => link.blackhole(false));
    run.note('heal');
    await convergedAfter(run, `${victim.id}'s lost release (nothing else changed)`);
  },
  verify(outcome) {
    return demotedItself(outcome, victimOf(outcome), 'cut', 'heal');
  },
};

const FILLER_BATCH = 400;
const FILLER_VALUE_BYTES = 1024;

/**
 * Redis under `maxmemory` with `allkeys-lru`, filled with unrelated keys: it evicts the group's
 * least recently used keys (`rank`, `log` first). Members must say so (advisory
 * `EVICTION_POLICY`) and the group must still hand over when the active leaves.
 */
const eviction: Scenario = {
  name: 'eviction',
  title:
    'maxmemory 4 MB with allkeys-lru, filled with unrelated keys for 3A while the group runs; then the active leaves',
  criteria: 'every member raised EVICTION_POLICY; Redis evicted keys; the group converges after the leave (F18)',
  params: INTERVALS,
  members: TRIO,
  redis: { config: { maxmemory: '4mb', 'maxmemory-policy': 'allkeys-lru' } },
  async run(run) {
    const { A } = run;
    const end = performance.now() + 3 * A;
    let next = 1;
    let missing = 0;
    await run.fault('filler keys under maxmemory allkeys-lru');
    while (performance.now() < end) {
      const lua = `for i = ${next}, ${next + FILLER_BATCH - 1} do redis.call('SET', 'filler:' .. i, string.rep('x', ${FILLER_VALUE_BYTES})) end return 1`;
      await run.admin('EVAL', lua, '0');
      next += FILLER_BATCH;
      for (const kind of GROUP_KEYS) if ((await run.admin('EXISTS', run.key(kind))) === ':0') missing += 1;
      await run.sleep(run.H / 2);
    }
    await run.heal('filler keys under maxmemory allkeys-lru');
    const evicted = Number((await redisInfo(run.redis.port, 'stats')).get('evicted_keys') ?? 0);
    run.notes.set('evicted', BigInt(evicted));
    run.notes.set('group-keys-missing', BigInt(missing));
    if (evicted === 0) run.unmet('Redis evicted nothing: the run proves nothing');
    const leaving = theActive(run);
    run.note('leave');
    await run.leave(leaving);
    await convergedAfter(run, `${leaving.id}'s leave under eviction (F18)`);
  },
  verify(outcome) {
    const unmet = outcome.members
      .filter((m) => !m.reported('advisory').some((a) => a.code === 'EVICTION_POLICY'))
      .map((m) => `${m.id} raised no EVICTION_POLICY advisory under allkeys-lru (F18)`);
    return [...unmet, ...someoneElseActivated(outcome, victimOf(outcome), 'leave')];
  },
  measure: (outcome) => ({
    evictedKeys: Number(outcome.notes.get('evicted') ?? 0n),
    groupKeysSeenMissing: Number(outcome.notes.get('group-keys-missing') ?? 0n),
  }),
};

// ---- stale and forged announcements ---------------------------------------------------------

const ROLES = ['active', 'releasing', 'preparing', 'standby', 'gone'] as const;

/** The group's incarnation (`createdAt` in its config), 0 if it has none now. */
export async function incarnationOf(run: ScenarioRun): Promise<number> {
  return Number(/\d+/.exec(await run.admin('HGET', run.key('config'), 'createdAt'))?.[0] ?? 0);
}

/**
 * An announcement no script sent: an incarnation in the past, the future or the current one
 * (`created`), a random version, and random changes naming the run's members.
 */
export function forgedAnnouncement(run: ScenarioRun, created: number): string {
  const { random } = run;
  const ids = run.processes.map((m) => m.id);
  const incarnation = random.pick([created + random.int(1, 10 ** 9), created - random.int(1, 10 ** 6), created]);
  const changes = Array.from({ length: random.int(0, 3) }, () => [
    random.pick(ids),
    random.pick(ROLES),
    String(random.int(0, 2 ** 40)),
    random.int(-1, 2),
    'forged',
  ]);
  return JSON.stringify({ i: String(incarnation), v: random.int(0, 10 ** 6), c: changes });
}

/**
 * Messages on the group's channel that no current script sent: copies of old announcements
 * (a delayed or stale publisher) and forged ones with random incarnations, versions and
 * changes. S7: an announcement may make a member renew, never decide for it — one with a
 * future incarnation used to deafen a standby for good (F15).
 */
const forgedAnnouncements: Scenario = {
  name: 'forged-announcements',
  title:
    'old announcements replayed and forged ones (random incarnations, versions, roles) for 2A; then the active leaves',
  criteria: 'another member activates after the leave, within the settling time (F15)',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const { A, random } = run;
    const recorder = await AnnouncementRecorder.start(run.redis, run.channel);
    try {
      // Some real announcements to replay: weight changes that move no slot.
      const c = run.member('c');
      for (let weight = 11; weight <= 14; weight++) await run.setWeight(c, weight);
      await run.sleep(run.settleMs);
      const created = await incarnationOf(run);
      const forged = () =>
        recorder.messages.length > 0 && random.chance(0.4)
          ? random.pick(recorder.messages)
          : forgedAnnouncement(run, created);
      const end = performance.now() + 2 * A;
      await run.fault('stale and forged announcements');
      // The shape of F15 first: one message from a later incarnation.
      await run.announce(JSON.stringify({ i: String(created + 10 ** 7), v: 1, c: [] }));
      while (performance.now() < end) {
        await run.announce(forged());
        await run.sleep(random.between(0.02, 0.2) * A);
      }
      await run.heal('stale and forged announcements');
    } finally {
      recorder.close();
    }
    await run.sleep(run.settleMs);
    const leaving = theActive(run);
    run.note('leave');
    await run.leave(leaving);
    await convergedAfter(run, `${leaving.id}'s leave after forged announcements (F15)`);
  },
  verify: (outcome) => someoneElseActivated(outcome, victimOf(outcome), 'leave'),
};

// ---- members that come back -----------------------------------------------------------------

/** Restarts `spec` and waits until it joined, within A + the settling time; a member that cannot is a criterion not met. */
async function restart(run: ScenarioRun, spec: MemberSpec, why: string): Promise<MemberProcess | undefined> {
  const member = await run.spawn(spec, 'attempted');
  const limit = run.A + run.settleMs;
  const joined = await member
    .until(() => member.joined || !member.running, 'it to join', limit, run.signal)
    .then(() => member.joined)
    .catch(() => false);
  if (!joined) {
    const refusal = member.reported('join-failed').at(-1);
    run.unmet(
      `${spec.id} ${why} had not joined ${limit} ms after it started (last refusal: ${refusal?.error ?? 'none'})`,
    );
    await run.leave(member);
    return undefined;
  }
  return member;
}

/**
 * Members killed and restarted with the same id, as a supervisor with fixed `--member-id`s
 * does: first one, while the others keep running scripts; then all of them, so that nobody
 * else expires the dead leases (F16: the join refused MEMBER_EXISTS for good).
 */
const sameIdRestart: Scenario = {
  name: 'same-id-restart',
  title: 'members SIGKILLed and restarted with the same id: one while the others run, then all at once',
  criteria: 'every restarted member joins within A + the settling time (F16); the group converges',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const { A, random } = run;
    const one = run.victim(random.pick(run.live()));
    const weightOfOne = run.weightOf(one);
    await run.kill(one);
    await run.sleep(random.between(0, 1.5) * A);
    await restart(run, { id: one.id, weight: weightOfOne }, 'restarted while the others ran');
    await convergedAfter(run, `${one.id} came back`);
    const everyone = run.live().map((m) => ({ id: m.id, weight: run.weightOf(m) }));
    for (const member of run.live()) await run.kill(member);
    run.note('all-killed');
    await Promise.all(
      everyone.map(async (spec) => {
        await run.sleep(random.between(0, 2) * A);
        await restart(run, spec, 'restarted with no other member running');
      }),
    );
    await convergedAfter(run, 'every member came back');
  },
};

/**
 * A member restarted with other parameters. While the group remembers its A and N, the join
 * is refused (PARAM_MISMATCH). Then the group forgets them: the active is cut off, the other
 * member leaves, and z joins with A/2 once the cut-off lease lapsed. When the old active's
 * link heals it must be refused too — a rejoin is checked like a join (F14): re-added,
 * it would hold leases of A/2 on Redis while believing for A.
 */
const paramChange: Scenario = {
  name: 'param-change-restart',
  title:
    'a member restarted with another A or N is refused; the active is cut off, the group empties and forgets its parameters, z joins with A/2, and the old active comes back with A',
  criteria:
    'the restarted member is refused with PARAM_MISMATCH; the old active coming back is refused with PARAM_MISMATCH and never activates again (F14)',
  params: INTERVALS,
  members: [
    { id: 'a', weight: 30 },
    { id: 'b', weight: 20 },
  ],
  async run(run) {
    const { A, random } = run;
    const b = run.member('b');
    await run.kill(b);
    // Past b's old lease: the refusal must be for the parameters, not for a live id.
    await run.sleep(1.2 * A);
    const other = random.chance(0.5) ? { activationInterval: 2 * A } : { activeGoal: 2 };
    const changed = await run.spawn({ id: 'b', weight: 20, params: other }, 'attempted');
    const refusal = changed.reported('join-failed').at(-1);
    if (refusal?.code !== 'PARAM_MISMATCH') {
      run.unmet(
        `b restarted with ${JSON.stringify(other)} was not refused with PARAM_MISMATCH (${refusal?.error ?? 'it joined'})`,
      );
    }
    await run.leave(changed);
    const restored = await run.spawn({ id: 'b', weight: 20 });
    await convergedAfter(run, 'b came back with the group’s parameters');

    const a = theActive(run);
    const link = run.link(a);
    run.note('cut');
    await run.fault(`blackhole ${a.id}`, () => link.blackhole(true));
    // b's renewals drop a once its lease lapsed; then b leaves, and the group, empty, forgets
    // its parameters. z's join gives it its own A.
    await run.sleep(1.5 * A);
    await run.leave(restored);
    const z = await run.spawn({ id: 'z', weight: 10, params: { activationInterval: A / 2 } }, 'attempted');
    await z
      .until(() => z.active, 'z to activate', 4 * A, run.signal)
      .catch(() => run.unmet(`z (A = ${A / 2}) never activated in the group that forgot its parameters`));
    run.note('heal');
    await run.heal(`blackhole ${a.id}`, () => link.blackhole(false));
    await run.sleep(3 * A);
    if (a.active) {
      // Re-added without the check: cut it off again, and the checker sees two actives.
      await run.during(
        `blackhole ${a.id} (again)`,
        2 * A,
        () => link.blackhole(true),
        () => link.blackhole(false),
      );
    }
    await run.leave(a);
  },
  verify(outcome) {
    const heal = noteOf(outcome, 'heal');
    const a = outcome.members.find((m) => m.id === 'a');
    const unmet: string[] = [];
    if (!a?.reported('advisory').some((r) => r.code === 'PARAM_MISMATCH' && r.at > heal)) {
      unmet.push('a came back with A = 900 to a group with A = 450 and raised no PARAM_MISMATCH (F14)');
    }
    for (const e of activations(outcome.history).filter((e) => e.member === 'a' && e.t > heal)) {
      unmet.push(`a activated (epoch ${e.epoch}) after coming back with other parameters (F14)`);
    }
    return unmet;
  },
};

// ---- aborts at random points ----------------------------------------------------------------

type Interruption = 'abort-join' | 'kill-in-set-weight' | 'kill-in-leave';
const INTERRUPTIONS: readonly Interruption[] = ['abort-join', 'kill-in-set-weight', 'kill-in-leave'];
const INTERRUPTION_ROUNDS = 4;

/**
 * A join whose AbortSignal fires at a random instant inside it (or just after), and members
 * SIGKILLed a random instant after they began a setWeight or a leave. An aborted join must end
 * with the member gone, never active (F17); a request cut short must leave the group
 * consistent.
 */
const aborts: Scenario = {
  name: 'aborts',
  title: `joins aborted at random instants (AbortSignal), members killed inside setWeight and leave, ${INTERRUPTION_ROUNDS} times`,
  criteria:
    'a member whose join was aborted leaves within A and never activates after the abort (F17); the group converges after every round',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const { A, random } = run;
    for (let round = 1; round <= INTERRUPTION_ROUNDS; round++) {
      const kind = random.pick(INTERRUPTIONS);
      if (kind === 'abort-join') {
        const id = `j${round}`;
        const after = random.int(0, 40);
        await run.fault(`abort ${id}'s join after ${after} ms`);
        // The highest weight: a member that stayed would activate.
        const member = await run.spawn({ id, weight: 90 + round, abortJoinAfterMs: after }, 'attempted');
        await member
          .until(() => member.left || !member.running, 'it to leave after the abort', A + 2000, run.signal)
          .catch(() =>
            run.unmet(`${id}'s join was aborted after ${after} ms and it had not left ${A + 2000} ms later (F17)`),
          );
        await run.heal(`abort ${id}'s join after ${after} ms`);
        if (member.running) await run.leave(member);
      } else {
        const member = random.pick(run.live());
        const spec = { id: member.id, weight: freshWeight(run) };
        const delay = random.between(0, 4);
        const description = `SIGKILL ${member.id} ${delay.toFixed(1)} ms into ${kind === 'kill-in-leave' ? 'leave' : 'setWeight'}`;
        await run.fault(description);
        member.send(kind === 'kill-in-leave' ? { cmd: 'leave' } : { cmd: 'weight', weight: spec.weight });
        await run.sleep(delay);
        await run.kill(member);
        await run.heal(description);
        await run.sleep(random.between(0, A));
        await restart(run, spec, `killed inside ${kind}`);
      }
      await convergedAfter(run, `round ${round} (${kind})`);
    }
  },
  verify(outcome) {
    const unmet: string[] = [];
    for (const member of outcome.members.filter((m) => m.args.abortJoinAfterMs >= 0)) {
      const aborted = member.reported('join-aborted')[0];
      if (!aborted) continue;
      const late = activations(outcome.history).filter((e) => e.member === member.id && e.t > aborted.at);
      for (const e of late) unmet.push(`${member.id} activated epoch ${e.epoch} after its join was aborted (F17)`);
    }
    return unmet;
  },
};

// ---- a slow link, then a cut ----------------------------------------------------------------

/**
 * The active's link slowed but usable (each round trip well inside the command timeout), for a
 * while, then cut: the lease it renewed over the slow link must still end in time — a lease
 * counted from the reply's arrival, or a reply handled after the deadline, shows here.
 */
const slowThenCut: Scenario = {
  name: 'slow-then-cut',
  title: 'the active’s link slowed (round trip up to 0.7 × the command timeout) for 2–4A, then blackholed for 2A',
  criteria: 'the active deactivates itself (lease-lost) during the cut; another member activates during it',
  params: INTERVALS,
  members: TRIO,
  async run(run) {
    const { A, H, random } = run;
    const victim = theActive(run);
    const link = run.link(victim);
    // The command timeout is 0.8H; a round trip crosses the link twice.
    const jitter = Math.round(random.between(0, 0.05) * H);
    const delay = Math.round(random.between(0.1, 0.35 - 0.05) * 0.8 * H);
    const slow = `delay ${victim.id} ${delay}±${jitter} ms`;
    await run.fault(slow, () => link.setDelay(delay, jitter));
    await run.sleep(random.between(2, 4) * A);
    run.note('cut');
    await run.fault(`blackhole ${victim.id}`, () => link.blackhole(true));
    await run.heal(slow);
    await run.sleep(2 * A);
    run.note('heal');
    await run.heal(`blackhole ${victim.id}`, async () => {
      link.heal();
      await run.sleep(delay + jitter);
    });
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    return [...demotedItself(outcome, victim, 'cut', 'heal'), ...someoneElseActivated(outcome, victim, 'cut', 'heal')];
  },
};

// ---- a partitioned old master under Sentinel -----------------------------------------------

/** How long the harness waits for the Sentinels to fail over (down-after 3 s, then an election). */
const FAILOVER_TIMEOUT_MS = 30_000;

/** The latest `ok` renewal of `member` in a window of the history. */
function lastOkRenewal(outcome: ScenarioOutcome, member: string, from: bigint, to: bigint): bigint | undefined {
  return outcome.history.findLast(
    (e) => e.member === member && e.type === 'renewal' && e.outcome === 'ok' && between(e.t, from, to),
  )?.t;
}

/**
 * The classic split brain of asynchronous replication. The master and the active member on
 * one side; the Sentinels, the replicas and the other members on the other (every path between
 * the sides runs through a chaos proxy, all blackholed at once). The Sentinels promote a
 * replica while the active can still renew on the old master. What makes it safe: the master
 * runs with `min-replicas-to-write 1`, so it refuses writes once no replica acknowledged for
 * `min-replicas-max-lag` s, and Sentinel's down-after is above that bound plus Redis's 2 s of
 * granularity (checked at join) — the old master stops extending leases before the replica is
 * promoted, and the promoted replica grants nothing for A after its replication id changed (S6).
 */
const partitionedMaster: Scenario = {
  name: 'sentinel-partitioned-master',
  title:
    'Sentinel: the master and the active member partitioned from the Sentinels, the replicas and the other members; a replica is promoted while the active still reaches the old master',
  criteria:
    'the Sentinels promote a replica and another member activates during the partition; the old master takes no renewal later than min-replicas-max-lag + 2 s after the partition; after the heal the old master becomes a replica',
  params: { ...INTERVALS, heartbeatInterval: 250, activationInterval: 2000 },
  members: TRIO,
  topology: 'sentinel',
  sentinel: { proxied: true },
  slackMs: 1500,
  async run(run) {
    const set = run.sentinelSet;
    const links = set.links;
    const old = await run.master();
    if (!links || old !== set.servers[0])
      throw new Error('the partition needs the first master of a proxied Sentinel set');
    const active = theActive(run);
    const others = run.live().filter((m) => m !== active);
    const cut = [
      ...links.replication,
      links.sentinels,
      ...others.map((m) => run.link(m)),
      ...run.sentinelLinks(active),
    ];
    const description = `partition: master (port ${old.port}) and ${active.id} | Sentinels, replicas, ${others.map((m) => m.id).join(', ')}`;
    run.note('partition');
    await run.fault(description, () => {
      for (const link of cut) link.blackhole(true);
    });
    let promoted: RedisServer | undefined;
    await run.untilServers(
      async () => {
        const current = await set.master();
        if (current === old || (await redisInfo(current.port, 'replication')).get('role') !== 'master') return false;
        promoted = current;
        return true;
      },
      'the Sentinels to promote a replica',
      FAILOVER_TIMEOUT_MS,
    );
    run.note('failed-over');
    run.log(`  the replica on port ${promoted?.port} took over`);
    await run
      .until(() => others.some((m) => m.active), 'another member to activate', run.settleMs + 5 * run.A)
      .catch(() => run.unmet('no member on the Sentinels’ side activated during the partition'));
    // The old active has stopped on its own by now (or the checker sees two actives).
    await run.sleep(2 * run.A);
    run.note('heal');
    await run.heal(description, () => {
      for (const link of cut) {
        link.reset();
        link.heal();
      }
    });
    await run.untilServers(
      async () => (await redisInfo(old.port, 'replication')).get('master_link_status') === 'up',
      'the old master to become a synced replica',
      FAILOVER_TIMEOUT_MS,
    );
    run.note('demoted');
  },
  verify(outcome) {
    const victim = victimOf(outcome);
    const partition = noteOf(outcome, 'partition');
    const heal = noteOf(outcome, 'heal');
    const unmet = someoneElseActivated(outcome, victim, 'partition', 'heal');
    const last = lastOkRenewal(outcome, victim, partition, heal);
    const bound = (SENTINEL_REPLICATION.minReplicasMaxLagS + 2) * 1000;
    if (last !== undefined && ms(partition, last) > bound) {
      unmet.push(
        `the old master extended ${victim}'s lease ${ms(partition, last).toFixed(0)} ms into the partition (bound ${bound} ms)`,
      );
    }
    if (!outcome.notes.has('demoted')) unmet.push('the old master never became a replica');
    return unmet;
  },
  measure(outcome) {
    const partition = outcome.notes.get('partition');
    const heal = outcome.notes.get('heal');
    const victim = outcome.victims[0];
    const last =
      partition === undefined || heal === undefined || victim === undefined
        ? undefined
        : lastOkRenewal(outcome, victim, partition, heal);
    const failedOver = outcome.notes.get('failed-over');
    return {
      lastOldMasterRenewalMs: partition === undefined || last === undefined ? undefined : ms(partition, last),
      failoverMs: partition === undefined || failedOver === undefined ? undefined : ms(partition, failedOver),
    };
  },
};

/** The scenarios of the fault kinds of issue 13, in the soak's order. */
export const FAULT_SCENARIOS: readonly Scenario[] = [
  laggingReplica,
  lostKey,
  staleKey,
  restartKeptKill,
  releaseLost,
  eviction,
  forgedAnnouncements,
  sameIdRestart,
  paramChange,
  aborts,
  slowThenCut,
  partitionedMaster,
];
