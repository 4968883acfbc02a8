// The scripts as a state machine, checked with random sequences (fast-check). Simulated
// members — not the Member class, but the member's rules written down here — call the real
// Lua scripts on two real redis-servers M and R, with A of tens of ms, while the test loses
// state the way deployments do: a failover to a replica that lags (an earlier snapshot of the
// group's keys, DUMPed from the current server, RESTOREd into the other one, which is promoted:
// its run_id differs from the first one's and its master_replid is new; a crash with
// `appendfsync everysec` looks the same, a restarted server has a new run_id), failovers back
// and forth (Sentinel's ping-pong: the first master, a lagging replica of the second one
// meanwhile, is promoted again), and one key lost (eviction, DEL). A snapshot used is always
// one of the current server's history since it became current: what a replica of it can hold. After every step it checks S1 (no more than N members can believe they hold a
// slot at one instant) and S2 (delivered epochs only grow, per member id and per slot).
//
// Not in this menu: an older copy of one key restored by hand, writes lost with no change of
// run_id (no Redis does that by itself), and a server that comes back with its own older data
// after the members renewed elsewhere (the stale master, docs/RELIABILITY.md F9).
//
// The member's rules (DESIGN S4, S6):
// - it believes it holds (slot, epoch) from the moment it delivers a grant until
//   t0 + A·(1−ρ) − δ of its latest successful renewal (t0 taken before sending), or until a
//   reply says otherwise: then it stops at once;
// - it renews claiming what it holds, with the incarnation and version of its last join or renew
//   reply, the highest epoch it has seen for itself and when that reply said its lease ends;
// - only a renewal's reply delivers a grant;
// - a refusal of its object (MEMBER_EXISTS: another object holds the id; PARAM_MISMATCH) ends it:
//   it stops believing at once, and a new object with the id may join later;
// - it never delivers an epoch it has seen released, revoked or delivered already;
// - it releases a slot it was told to release, and an epoch it gave up.
//
// Replay a failure with the seed and path fast-check prints:
//   UNDERSTUDY_MODEL_SEED=<seed> UNDERSTUDY_MODEL_PATH=<path> pnpm exec vitest run --project core packages/core/test/scripts-model.test.ts
// UNDERSTUDY_MODEL_RUNS and UNDERSTUDY_MODEL_SECONDS run it longer.
import { randomUUID } from 'node:crypto';
import { type GroupKeys, groupKeys } from '@understudy/core/testing';
import { freePort, hrNow, type RedisServer, startRedis, uniqueGroup } from '@understudy/testkit';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  isSteady,
  type MemberScriptName,
  type MemberView,
  type RenewalReply,
  type ScriptArgs,
} from '../src/script-specs.js';
import { scripts } from '../src/scripts.js';

const H = 10;
const A = 60;
const RHO = 0.01;
/** δ: the member's safety margin. Beliefs are computed from timestamps, not timers: a stalled test loses nothing. */
const DELTA = 2;
const MEMBERS = 4;
const KEY_KINDS = ['config', 'members', 'leases', 'rank', 'slots', 'log'] as const;

const env = process.env;
const RUNS = Number(env.UNDERSTUDY_MODEL_RUNS ?? 200);
const SECONDS = Number(env.UNDERSTUDY_MODEL_SECONDS ?? 40);

type Step =
  | { kind: 'join'; m: number }
  | { kind: 'renew'; m: number; deliver: boolean }
  | { kind: 'tick'; ticks: number; deliver: boolean }
  | { kind: 'deliver'; m: number }
  | { kind: 'setWeight'; m: number; weight: number }
  | { kind: 'leave'; m: number }
  | { kind: 'lapse'; m: number }
  | { kind: 'resume'; m: number }
  | { kind: 'crash'; m: number }
  | { kind: 'setGoal'; goal: number }
  | { kind: 'wait'; ms: number }
  | { kind: 'snapshot' }
  | { kind: 'failover'; back: number }
  | { kind: 'lose'; key: number };

const member = fc.integer({ min: 0, max: MEMBERS - 1 });
const weight = fc.integer({ min: 1, max: 4 });
const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  { arbitrary: fc.record({ kind: fc.constant('join'), m: member }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('renew'), m: member, deliver: fc.boolean() }), weight: 4 },
  {
    arbitrary: fc.record({
      kind: fc.constant('tick'),
      ticks: fc.integer({ min: 1, max: 3 }),
      deliver: fc.constantFrom(true, true, false),
    }),
    weight: 10,
  },
  { arbitrary: fc.record({ kind: fc.constant('deliver'), m: member }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('setWeight'), m: member, weight }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('leave'), m: member }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('lapse'), m: member }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('resume'), m: member }), weight: 2 },
  { arbitrary: fc.record({ kind: fc.constant('crash'), m: member }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('setGoal'), goal: fc.integer({ min: 1, max: 3 }) }), weight: 1 },
  { arbitrary: fc.record({ kind: fc.constant('wait'), ms: fc.integer({ min: 1, max: A + H }) }), weight: 3 },
  { arbitrary: fc.record({ kind: fc.constant('snapshot') }), weight: 4 },
  { arbitrary: fc.record({ kind: fc.constant('failover'), back: fc.nat(3) }), weight: 8 },
  { arbitrary: fc.record({ kind: fc.constant('lose'), key: fc.nat(KEY_KINDS.length - 1) }), weight: 2 },
) as fc.Arbitrary<Step>;

const scenarioArbitrary = fc.record({
  goal: fc.integer({ min: 1, max: 2 }),
  // A member that comes back with another A (DESIGN §1: a rejoin is checked like a join).
  activations: fc.array(fc.constantFrom(A, A, A, 2 * A), { minLength: MEMBERS, maxLength: MEMBERS }),
  weights: fc.array(weight, { minLength: MEMBERS, maxLength: MEMBERS }),
  steps: fc.array(stepArbitrary, { minLength: 20, maxLength: 120 }),
});
type Scenario = typeof scenarioArbitrary extends fc.Arbitrary<infer T> ? T : never;

/** A member's belief that it holds a slot: [start, end) on the hrNow() clock. */
interface Belief {
  member: string;
  slot: number;
  epoch: number;
  start: number;
  end: number;
  open: boolean;
}

/** Thrown when a rule of DESIGN §2 is broken; carries the trace of the run. */
class Violation extends Error {}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One simulated member object (a restart makes a new one with the same id and no memory). */
class SimMember {
  nonce = randomUUID();
  joined = false;
  lapsing = false;
  deadline = Number.NEGATIVE_INFINITY;
  view: MemberView | undefined;
  /** The view of its latest join or renew reply: what a steady renewal reply leaves as it was. */
  word: MemberView | undefined;
  /** Whether `view` came from a renewal: only such a reply delivers a grant. */
  viewFromRenewal = false;
  /** When the server said its lease ends (its latest join or renew reply), 0 if none. */
  leaseEnd = 0;
  belief: Belief | undefined;
  /** Epochs it must never deliver: released, revoked or delivered already. */
  readonly seen = new Set<number>();
  /** Epochs it gave up and has to hand back (a lapsed belief) once it reaches Redis. */
  readonly toRelease = new Set<number>();
  incarnation = 0;
  version = -1;
  floor = 0;
  goal: number;

  constructor(
    readonly id: string,
    readonly activation: number,
    public weight: number,
    goal: number,
  ) {
    this.goal = goal;
  }
}

class World {
  current = 0;
  readonly keys: GroupKeys;
  readonly members: SimMember[];
  readonly beliefs: Belief[] = [];
  /** Every delivery: per member id and per slot, epochs must grow. */
  readonly deliveries: Belief[] = [];
  /** The group's goal as the test saw it: [time, goal]. */
  readonly goals: [number, number][] = [];
  readonly snapshots: { at: number; server: number; dumps: (Buffer | null)[] }[] = [];
  /** When the current server became current. */
  currentSince = Number.NEGATIVE_INFINITY;
  readonly trace: string[] = [];
  readonly began = hrNow();

  constructor(
    readonly servers: readonly Redis[],
    readonly closedPort: number,
    readonly scenario: Scenario,
  ) {
    this.keys = groupKeys(uniqueGroup('model'));
    this.members = scenario.activations.map(
      (activation, i) => new SimMember(`m${i}`, activation, scenario.weights[i] ?? 1, scenario.goal),
    );
  }

  get redis(): Redis {
    return this.servers[this.current] as Redis;
  }

  note(line: string): void {
    this.trace.push(`${(hrNow() - this.began).toFixed(1).padStart(7)} ms  ${line}`);
  }

  fail(problem: string): never {
    throw new Violation(
      `${problem}\n  trace (test clock, since the run began):\n    ${this.trace.slice(-60).join('\n    ')}`,
    );
  }

  // ---- the member's rules ---------------------------------------------------------------

  /** Ends a belief at `at` (a reply said otherwise, or the deadline passed). */
  stop(m: SimMember, at: number, why: string): void {
    const b = m.belief;
    if (!b) return;
    b.end = Math.min(at, m.deadline);
    b.open = false;
    m.belief = undefined;
    m.seen.add(b.epoch);
    this.note(`${m.id} stops believing slot ${b.slot} epoch ${b.epoch} (${why})`);
  }

  /** S4: at its deadline a member stops on its own, and hands the epoch back when it can. */
  expire(m: SimMember, now: number): void {
    if (m.belief && now >= m.deadline) {
      const epoch = m.belief.epoch;
      this.stop(m, m.deadline, 'lease deadline passed');
      m.toRelease.add(epoch);
    }
  }

  async script<N extends MemberScriptName | 'renew'>(
    m: SimMember,
    name: N,
    args: ScriptArgs<N>,
  ): Promise<MemberView | undefined> {
    const object = m;
    try {
      const run = scripts[name] as (r: Redis, k: GroupKeys, a: ScriptArgs<N>) => Promise<RenewalReply>;
      const reply = await run(this.redis, this.keys, args);
      // A steady renewal: nothing changed since the member's latest join or renew reply.
      const view = isSteady(reply)
        ? { ...(m.word as MemberView), serverNow: reply.serverNow, watchDeadline: reply.watchDeadline, rejoined: false }
        : reply;
      if (name === 'renew') replies[isSteady(reply) ? 'steady' : 'full'] += 1;
      // The goal the server runs with from here: a rejoin may make a forgotten group again with
      // the member's own goal, in the middle of a step.
      if (!isSteady(reply) && reply.activeGoal > 0) this.goals.push([hrNow(), reply.activeGoal]);
      this.note(
        `${m.id} ${name} → ${view.role} epoch ${view.epoch} slot ${view.slot} v${view.version} i${view.incarnation} A${view.activationInterval} q${Math.max(0, view.quarantineUntil - view.serverNow)}`,
      );
      return view;
    } catch (error) {
      const message = (error as Error).message.split('\n')[0] ?? '';
      this.note(`${m.id} ${name} failed: ${message}`);
      // The object is refused for good: it stops and leaves; a new object may join later.
      const code = (error as { code?: string }).code;
      if ((code === 'MEMBER_EXISTS' || code === 'PARAM_MISMATCH') && this.members.includes(object)) {
        this.restart(object, `refused: ${code}`);
      }
      return undefined;
    }
  }

  /** Applies a reply; `sentAt` is t0 for a call that renews the lease (join, renew). */
  async apply(m: SimMember, view: MemberView, sentAt?: number, renewal = false): Promise<void> {
    const now = hrNow();
    this.expire(m, now);
    if (sentAt !== undefined && view.role !== 'gone') {
      m.deadline = Math.max(m.deadline, sentAt + m.activation * (1 - RHO) - DELTA);
      if (m.belief) m.belief.end = m.deadline;
    }
    m.view = view;
    m.viewFromRenewal = renewal;
    if (sentAt !== undefined) {
      // Join and renew replies only: the scripts that check what the member sends back.
      m.incarnation = view.incarnation;
      m.version = view.version;
      m.leaseEnd = view.role === 'gone' ? 0 : view.serverNow + view.activationInterval;
      m.word = view;
    }
    if (view.activeGoal > 0) m.goal = view.activeGoal;
    if (view.role === 'active' || view.role === 'releasing') m.floor = Math.max(m.floor, view.epoch);
    const held = m.belief;
    if (view.role === 'active') {
      if (held && held.epoch !== view.epoch) this.stop(m, now, `the reply says epoch ${view.epoch}`);
      if (!m.belief && m.seen.has(view.epoch)) m.toRelease.add(view.epoch);
    } else if (view.role === 'releasing') {
      if (held) this.stop(m, now, `the reply says releasing epoch ${view.epoch}`);
      m.seen.add(view.epoch);
      m.toRelease.add(view.epoch);
    } else if (held) {
      this.stop(m, now, `the reply says ${view.role}`);
    }
    await this.releaseGivenUp(m);
  }

  /** Hands back every epoch the member gave up (its deactivate handler is instant here). */
  async releaseGivenUp(m: SimMember): Promise<void> {
    if (m.lapsing || !m.joined) return;
    for (const epoch of [...m.toRelease]) {
      m.toRelease.delete(epoch);
      const view = await this.script(m, 'release', {
        channel: this.keys.events,
        memberId: m.id,
        epoch,
        reason: 'lease-lost',
        preparationInterval: 0,
        nonce: m.nonce,
      });
      if (view) await this.apply(m, view);
    }
  }

  /** Delivers `activate` if the member's rules allow it. */
  deliver(m: SimMember): void {
    const now = hrNow();
    this.expire(m, now);
    const view = m.view;
    if (!m.joined || m.belief || view?.role !== 'active' || !m.viewFromRenewal) return;
    if (m.seen.has(view.epoch) || now >= m.deadline) return;
    const belief: Belief = {
      member: m.id,
      slot: view.slot,
      epoch: view.epoch,
      start: now,
      end: m.deadline,
      open: true,
    };
    m.seen.add(view.epoch);
    m.belief = belief;
    this.beliefs.push(belief);
    this.note(`${m.id} delivers slot ${view.slot} epoch ${view.epoch} until +${(m.deadline - now).toFixed(1)} ms`);
    this.checkDelivery(belief);
    this.deliveries.push(belief);
  }

  /** What a member sends about itself on joining and every renewal. */
  memberArgs(m: SimMember) {
    return {
      channel: this.keys.events,
      memberId: m.id,
      weight: m.weight,
      activeGoal: m.goal,
      activationInterval: m.activation,
      heartbeatInterval: H,
      preparationInterval: 0,
      host: 'model',
      pid: 0,
    };
  }

  async join(m: SimMember): Promise<void> {
    if (m.joined) return;
    const sentAt = hrNow();
    const view = await this.script(m, 'join', { ...this.memberArgs(m), nonce: m.nonce });
    if (!view) return;
    m.joined = true;
    await this.apply(m, view, sentAt);
  }

  async renew(m: SimMember, deliver: boolean): Promise<void> {
    if (!m.joined || m.lapsing) return;
    this.expire(m, hrNow());
    await this.releaseGivenUp(m);
    const held = m.belief;
    const sentAt = hrNow();
    const view = await this.script(m, 'renew', {
      ...this.memberArgs(m),
      claimedEpoch: held?.epoch ?? 0,
      claimedSlot: held?.slot ?? -1,
      nonce: m.nonce,
      knownIncarnation: m.incarnation,
      knownVersion: m.version,
      epochFloor: m.floor,
      leaseEnd: m.leaseEnd,
    });
    if (!view) return;
    await this.apply(m, view, sentAt, true);
    if (deliver) this.deliver(m);
  }

  /** One heartbeat interval passes: every member that is not lapsing renews. */
  async tick(deliver: boolean): Promise<void> {
    await sleep(H);
    for (const m of this.members) await this.renew(m, deliver);
  }

  async setWeight(m: SimMember, w: number): Promise<void> {
    if (!m.joined || m.lapsing) return;
    const view = await this.script(m, 'set_weight', {
      channel: this.keys.events,
      memberId: m.id,
      weight: w,
      preparationInterval: 0,
      nonce: m.nonce,
    });
    if (!view) return;
    m.weight = w;
    await this.apply(m, view);
  }

  async leave(m: SimMember): Promise<void> {
    if (!m.joined || m.lapsing) return;
    this.stop(m, hrNow(), 'leave');
    const view = await this.script(m, 'leave', { channel: this.keys.events, memberId: m.id, nonce: m.nonce });
    if (view) this.restart(m, 'left');
  }

  /** A new member object with the same id: nothing of the old one's memory. */
  restart(m: SimMember, why: string): void {
    this.stop(m, hrNow(), why);
    const i = this.members.indexOf(m);
    this.members[i] = new SimMember(m.id, m.activation, m.weight, this.scenario.goal);
  }

  async setGoal(goal: number): Promise<void> {
    try {
      await scripts.set_goal(this.redis, this.keys, { channel: this.keys.events, activeGoal: goal });
      // In force from here, even if the group forgets it at once (its last lease was lost).
      this.goals.push([hrNow(), goal]);
      this.note(`operator sets the goal to ${goal}`);
    } catch (error) {
      this.note(`set_goal ${goal} failed: ${(error as Error).message}`);
    }
  }

  // ---- lost state ---------------------------------------------------------------------

  async snapshot(): Promise<void> {
    const dumps = await Promise.all(this.keys.scriptKeys.map((key) => this.redis.dumpBuffer(key)));
    this.snapshots.push({ at: hrNow(), server: this.current, dumps });
    this.note(`snapshot #${this.snapshots.length - 1} of server ${this.current}`);
  }

  /** A snapshot of the current server's history since it became current, `back` from the newest. */
  pick(back: number) {
    const history = this.snapshots.filter((s) => s.server === this.current && s.at >= this.currentSince);
    return history[history.length - 1 - (back % Math.max(1, history.length))];
  }

  async restoreInto(redis: Redis, dumps: (Buffer | null)[]): Promise<void> {
    for (const [i, key] of this.keys.scriptKeys.entries()) {
      const dump = dumps[i];
      if (dump) await redis.restore(key, 0, dump, 'REPLACE');
      else await redis.del(key);
    }
  }

  /** A lagging replica promoted: an earlier state on a server with another run_id; everyone moves to it. */
  async failover(back: number): Promise<void> {
    const snapshot = this.pick(back);
    if (!snapshot) return;
    const target = 1 - this.current;
    const promoted = this.servers[target] as Redis;
    // A promotion starts a new replication history (a new master_replid), as Sentinel's and
    // Cluster's do: the server was a replica (of a port where nothing listens) until now.
    await promoted.replicaof('127.0.0.1', this.closedPort);
    await promoted.replicaof('NO', 'ONE');
    await this.restoreInto(promoted, snapshot.dumps);
    this.current = target;
    this.currentSince = hrNow();
    this.note(`failover to server ${target} holding snapshot taken at ${(snapshot.at - this.began).toFixed(1)} ms`);
    // What the new master's own replica holds right after the promotion: a failover back may restore it.
    await this.snapshot();
  }

  /** One key lost: evicted, or deleted by an operator. */
  async lose(key: number): Promise<void> {
    await this.redis.del(this.keys.scriptKeys[key] as string);
    this.note(`the ${KEY_KINDS[key]} key is lost`);
  }

  async recordGoal(): Promise<void> {
    const goal = Number(await this.redis.hget(this.keys.config, 'activeGoal'));
    if (goal > 0) this.goals.push([hrNow(), goal]);
  }

  // ---- the checks ---------------------------------------------------------------------

  /**
   * S2: a delivered epoch is above every epoch delivered before it by this member id, and for
   * this slot. (Across slots a grant may be delivered late, after a later grant's belief ended.)
   */
  checkDelivery(d: Belief): void {
    for (const e of this.deliveries) {
      if (d.epoch > e.epoch) continue;
      if (e.member === d.member) this.fail(`S2: ${d.member} delivered epoch ${d.epoch} after epoch ${e.epoch}`);
      if (e.slot === d.slot) {
        this.fail(
          `S2: slot ${d.slot} delivered to ${d.member} with epoch ${d.epoch} after epoch ${e.epoch} (${e.member})`,
        );
      }
    }
  }

  /** The goal bound at `t`: the largest goal in force during the longest lease before it (lowering it demotes, it does not revoke). */
  goalBound(t: number): number {
    const window = 2 * A;
    let bound = 0;
    let before = 0;
    for (const [at, goal] of this.goals) {
      if (at <= t - window) before = goal;
      else if (at <= t) bound = Math.max(bound, goal);
    }
    return Math.max(bound, before);
  }

  /** S1: at the start of every belief, count the beliefs that overlap it. */
  checkBeliefs(): void {
    for (const b of this.beliefs) {
      const overlapping = this.beliefs.filter((o) => o.start <= b.start && b.start < o.end);
      const bound = this.goalBound(b.start);
      if (overlapping.length > bound) {
        const who = overlapping.map(
          (o) =>
            `${o.member} slot ${o.slot} epoch ${o.epoch} [${(o.start - this.began).toFixed(1)}, ${(o.end - this.began).toFixed(1)})`,
        );
        this.fail(
          `S1: ${overlapping.length} members believe they hold a slot at once, goal ${bound}: ${who.join('; ')}`,
        );
      }
    }
  }

  // ---- steps --------------------------------------------------------------------------

  async run(step: Step): Promise<void> {
    const m = 'm' in step ? (this.members[step.m] as SimMember) : undefined;
    switch (step.kind) {
      case 'join':
        return this.join(m as SimMember);
      case 'renew':
        return this.renew(m as SimMember, step.deliver);
      case 'tick':
        for (let i = 0; i < step.ticks; i++) await this.tick(step.deliver);
        return;
      case 'deliver':
        return this.deliver(m as SimMember);
      case 'setWeight':
        return this.setWeight(m as SimMember, step.weight);
      case 'leave':
        return this.leave(m as SimMember);
      case 'lapse':
        if (m?.joined) {
          m.lapsing = true;
          this.note(`${m.id} stops renewing`);
        }
        return;
      case 'resume':
        if (m?.lapsing) {
          m.lapsing = false;
          this.note(`${m.id} renews again`);
        }
        return;
      case 'crash':
        return this.restart(m as SimMember, 'crash');
      case 'setGoal':
        return this.setGoal(step.goal);
      case 'wait':
        await sleep(step.ms);
        return;
      case 'snapshot':
        return this.snapshot();
      case 'failover':
        return this.failover(step.back);
      case 'lose':
        return this.lose(step.key);
    }
  }
}

/** Renewal replies by shape, over all runs: the steady state must be reached, not only the full path. */
const replies = { steady: 0, full: 0 };

let servers: RedisServer[] = [];
let clients: Redis[] = [];
let closedPort = 0;
beforeAll(async () => {
  closedPort = await freePort();
  servers = await Promise.all([startRedis(), startRedis()]);
  clients = servers.map((s) => new Redis(s.url, { connectionName: 'model-member' }));
});
afterAll(async () => {
  for (const client of clients) client.disconnect();
  await Promise.all(servers.map((s) => s.stop()));
});

/** Runs one scenario against the servers; throws a Violation with the trace when a rule breaks. */
async function runScenario(scenario: Scenario): Promise<World> {
  const world = new World(clients, closedPort, scenario);
  try {
    // Prelude: everyone joins, and the group's first quarantine (one A) runs out.
    for (const m of world.members) await world.join(m);
    await world.recordGoal();
    while (hrNow() - world.began < A + 2 * H) await world.tick(true);
    for (const step of scenario.steps) {
      await world.recordGoal();
      await world.run(step);
      await world.recordGoal();
      for (const m of world.members) world.expire(m, hrNow());
      world.checkBeliefs();
    }
    return world;
  } finally {
    await Promise.all(clients.map((c) => c.del(...world.keys.scriptKeys)));
  }
}

describe('the scripts as a state machine', () => {
  // CI's run of 2026-12-07 (seed 2115459054): the operator lowered the goal to 1, every lease
  // ran out and the group forgot its keys; the next renewal made it again with that member's
  // goal, 2 (the first member fixes N, DESIGN §1), and two members were granted a slot in the
  // same tick. The goal a reply reports has to count from when the reply arrives, not from
  // the end of the step that holds it.
  it('counts the goal with which a member makes a forgotten group again', async () => {
    const world = await runScenario({
      goal: 2,
      activations: [A, A, A, A],
      weights: [2, 2, 1, 1],
      steps: [
        { kind: 'tick', ticks: 3, deliver: true },
        { kind: 'setGoal', goal: 1 },
        { kind: 'wait', ms: 2 * A + H },
        { kind: 'tick', ticks: 1, deliver: true },
      ],
    });
    // The case was reached: the last tick granted both slots again, to the two heaviest.
    const [first, second] = world.beliefs.slice(-2) as [Belief, Belief];
    expect([first.member, second.member].sort()).toEqual(['m0', 'm1']);
    expect(second.start).toBeLessThan(first.end);
    expect(first.start).toBeGreaterThan(world.goals.find(([, goal]) => goal === 1)?.[0] ?? Number.POSITIVE_INFINITY);
  });

  it(
    'never let more than N members believe they hold a slot, and delivered epochs only grow',
    async () => {
      await fc.assert(
        fc.asyncProperty(scenarioArbitrary, async (scenario) => {
          await runScenario(scenario);
        }),
        {
          numRuns: RUNS,
          interruptAfterTimeLimit: SECONDS * 1000,
          markInterruptAsFailure: false,
          ...(env.UNDERSTUDY_MODEL_SEED ? { seed: Number(env.UNDERSTUDY_MODEL_SEED) } : {}),
          ...(env.UNDERSTUDY_MODEL_PATH ? { path: env.UNDERSTUDY_MODEL_PATH } : {}),
        },
      );
      console.log(`renewal replies: ${replies.steady} steady, ${replies.full} full`);
      if (!env.UNDERSTUDY_MODEL_PATH) expect(replies.steady).toBeGreaterThan(0);
    },
    (SECONDS + 30) * 1000,
  );
});
