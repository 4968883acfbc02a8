// Failover of a group when its Redis master is lost: Sentinel and Cluster, SIGKILL or SIGSTOP of
// the master, measured from the fault to a correct active set on the new master.
import type { RedisServer } from '@understudy/testkit';
import { hrNow, mapClocks, sleep } from '../clock.js';
import type { ContenderConfig } from '../contenders/types.js';
import { uniqueKey } from '../context.js';
import { believesAt, type CorrectSet, waitForCorrectSet } from '../group-state.js';
import { beliefIntervals, readGroupLog } from '../history.js';
import { Contender } from '../processes.js';
import { type Interval, maxConcurrency, overlapMs } from '../stats.js';
import type { HaTopology, TopologyKind } from '../topology.js';
import { commandStats } from './cost.js';

export type Fault = 'SIGKILL' | 'SIGSTOP';
export type Durability = 'async' | 'replicated';

export interface HaPlan {
  topology: TopologyKind;
  fault: Fault;
  durability: Durability;
  activationMs: number;
  heartbeatMs: number;
  rounds: number;
}

/** One failover; times in ms after the signal to the master. */
export interface HaRound {
  /** Sentinel: the first `+switch-master` any Sentinel published. */
  switchMaster?: number;
  /** A successor answered ROLE as master (polled every 10 ms). */
  promoted: number;
  /** The first member renewal on the new master (a lease ending after loss + A; sampled every 10 ms). */
  reconnected?: number;
  /** The new master's quarantine (S6): its log entry's Redis time and the end it set. */
  quarantineFrom?: number;
  quarantineUntil?: number;
  /** The first activate callback after the fault. */
  firstActivation?: number;
  /** The active set correct again on the new master (see `isCorrect`). */
  correct: number;
  /** Expected actives that believed they were active without a break from the fault to `correct`. */
  keptActive: number;
  /** Activate callbacks between the fault and `correct`. */
  activations: number;
  /** Their reasons, and the reasons of the deactivate callbacks in that time. */
  activateReasons: string[];
  deactivateReasons: string[];
  /** Member commands the new master served between the fault and `correct` (INFO commandstats). */
  scripts: number;
  waits: number;
  /** SIGSTOP: the old master resumed (once the set was correct) → it answers ROLE as a replica. */
  oldMasterDemoted?: number;
  /** Something the report should say about this round. */
  note?: string;
}

export interface HaResult {
  plan: HaPlan;
  rounds: HaRound[];
  /** Every member's belief intervals over all rounds. */
  intervals: Interval[];
  maxConcurrency: number;
  overlapMs: number;
  /** Activations whose epoch was not above every epoch delivered before it in the group. */
  epochsBack: number;
  problems: string[];
}

/** The group of every HA scenario: three members of distinct weights, the top two active. */
export const HA_GOAL = 2;
export const HA_MEMBERS = Object.freeze([
  { label: 'heavy', weight: 30 },
  { label: 'middle', weight: 20 },
  { label: 'light', weight: 10 },
]);

const PROMOTION_TIMEOUT_MS = 30_000;

export function haConfig(topology: HaTopology, plan: Omit<HaPlan, 'rounds' | 'fault'>): ContenderConfig {
  return {
    kind: 'understudy',
    key: uniqueKey(`ha-${plan.topology}`),
    redisUrl: '',
    topology: topology.contender,
    durability: plan.durability,
    etcdHosts: [],
    activationMs: plan.activationMs,
    heartbeatMs: plan.heartbeatMs,
    slots: HA_GOAL,
  };
}

/** Starts the three members (one process each) and waits until the top two are active. */
export async function startHaGroup(topology: HaTopology, config: ContenderConfig): Promise<Contender[]> {
  const contenders = HA_MEMBERS.map((m) => new Contender(config, m.label));
  await Promise.all(contenders.map((c) => c.ready()));
  for (const [i, c] of contenders.entries()) await c.join(HA_MEMBERS[i]?.weight);
  const master = await topology.master(config.key);
  await waitForCorrectSet(topology.probe(master).client, config.key, want(contenders, 0), {
    stableMs: 3 * config.heartbeatMs,
    timeoutMs: 3 * config.activationMs + 15_000,
    what: 'the first active set',
  });
  return contenders;
}

/** The top `HA_GOAL` contenders by weight (they joined in weight order, heaviest first). */
export function want(contenders: readonly Contender[], renewedAfter: number): CorrectSet {
  return { expected: contenders.slice(0, HA_GOAL).map((c) => c.member), contenders, renewedAfter };
}

/** Polls ROLE on the successors until one answers as master; returns it and when. */
export async function waitForPromotion(
  topology: HaTopology,
  successors: readonly RedisServer[],
): Promise<{ server: RedisServer; at: number }> {
  const deadline = hrNow() + PROMOTION_TIMEOUT_MS;
  for (;;) {
    const roles = await Promise.all(
      successors.map(async (server) => {
        const reply = (await topology
          .probe(server)
          .client.role()
          .catch(() => undefined)) as unknown[] | undefined;
        return { server, master: reply?.[0] === 'master', at: hrNow() };
      }),
    );
    const promoted = roles.find((r) => r.master);
    if (promoted) return { server: promoted.server, at: promoted.at };
    if (hrNow() > deadline) throw new Error(`no replica became master within ${PROMOTION_TIMEOUT_MS} ms`);
    await sleep(10);
  }
}

/**
 * Before a fault: `master` answers ROLE as master and every successor as its connected replica.
 * (A Sentinel's answer alone can be stale; killing a server that is not the master would time
 * nothing.)
 */
export async function waitForSettledRoles(
  topology: HaTopology,
  master: RedisServer,
  successors: readonly RedisServer[],
  timeoutMs = 30_000,
): Promise<void> {
  const role = async (server: RedisServer) =>
    ((await topology
      .probe(server)
      .client.role()
      .catch(() => undefined)) ?? []) as unknown[];
  const deadline = hrNow() + timeoutMs;
  for (;;) {
    const [own, ...others] = await Promise.all([master, ...successors].map(role));
    const settled =
      own?.[0] === 'master' &&
      others.every((r) => r[0] === 'slave' && Number(r[2]) === master.port && r[3] === 'connected');
    if (settled) return;
    if (hrNow() > deadline) {
      throw new Error(
        `the master on port ${master.port} and its replicas did not settle within ${timeoutMs} ms: ` +
          JSON.stringify([own, ...others].map((r) => r?.slice(0, 4))),
      );
    }
    await sleep(50);
  }
}

async function waitForRole(topology: HaTopology, server: RedisServer, role: string, timeoutMs: number) {
  const deadline = hrNow() + timeoutMs;
  for (;;) {
    const reply = (await topology
      .probe(server)
      .client.role()
      .catch(() => undefined)) as unknown[] | undefined;
    if (reply?.[0] === role) return hrNow();
    if (hrNow() > deadline) return undefined;
    await sleep(10);
  }
}

/**
 * Fencing (S2) as a downstream sees it: activations whose epoch is not above the epoch of an
 * activation that had already ended before they began. (Activations granted by one script
 * reach their members in any order, so callback order alone proves nothing.)
 */
export function epochsGoingBack(contenders: readonly Contender[]): number {
  const held: { start: number; end: number; epoch: number }[] = [];
  for (const c of contenders) {
    let open: { start: number; epoch: number } | undefined;
    for (const e of c.events) {
      if (e.event === 'acquired') open ??= { start: e.t, epoch: Number(e.epoch) };
      else if ((e.event === 'released' || e.event === 'lost') && open) {
        held.push({ ...open, end: e.t });
        open = undefined;
      }
    }
    if (open) held.push({ ...open, end: Number.POSITIVE_INFINITY });
  }
  return held.filter((a) => held.some((b) => b.end <= a.start && a.epoch <= b.epoch)).length;
}

/** Rounds of master loss on one topology; the topology is healed after each and left running. */
export async function runHaCase(
  topology: HaTopology,
  plan: HaPlan,
  progress: (line: string) => void,
): Promise<HaResult> {
  const { activationMs: A, heartbeatMs: H } = plan;
  const config = haConfig(topology, plan);
  const group = config.key;
  const result: HaResult = {
    plan,
    rounds: [],
    intervals: [],
    maxConcurrency: 0,
    overlapMs: 0,
    epochsBack: 0,
    problems: [],
  };
  const name = `${plan.topology} ${plan.fault} ${plan.durability} A=${A}`;
  let contenders: Contender[] = [];
  try {
    contenders = await startHaGroup(topology, config);
    for (let round = 1; round <= plan.rounds; round++) {
      const master = await topology.master(group);
      try {
        const sample = await failOver(topology, plan, contenders, master);
        result.rounds.push(sample);
        if (sample.note) result.problems.push(`round ${round}: ${sample.note}`);
        progress(
          `${name}: round ${round}/${plan.rounds}: promoted ${sample.promoted.toFixed(0)} ms, ` +
            `correct ${sample.correct.toFixed(0)} ms after the ${plan.fault}` +
            (sample.quarantineUntil === undefined ? '' : ` (quarantine until ${sample.quarantineUntil.toFixed(0)} ms)`),
        );
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        result.problems.push(`round ${round}: ${message}`);
        progress(`${name}: round ${round} failed: ${message}`);
        if (master.paused) await master.resume();
        await topology.heal(master, await topology.master(group));
      }
      await sleep(H);
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.problems.push(`stopped early: ${message}`);
    progress(`${name}: stopped early: ${message}`);
  } finally {
    const end = hrNow();
    await Promise.all(contenders.map((c) => c.kill('SIGKILL')));
    for (const c of contenders) result.intervals.push(...beliefIntervals(c, end));
    result.maxConcurrency = maxConcurrency(result.intervals);
    result.overlapMs = overlapMs(result.intervals, HA_GOAL);
    result.epochsBack = epochsGoingBack(contenders);
    for (const c of contenders) {
      for (const e of c.events) if (e.event === 'error') result.problems.push(`${c.label}: ${e.message}`);
    }
  }
  return result;
}

/** One failover: fault, promotion, the correct set on the new master, then the topology healed. */
async function failOver(
  topology: HaTopology,
  plan: HaPlan,
  contenders: readonly Contender[],
  master: RedisServer,
): Promise<HaRound> {
  const { activationMs: A, heartbeatMs: H } = plan;
  const group = contenders[0]?.config.key ?? '';
  const successors = await topology.successors(master);
  if (successors.length === 0) throw new Error(`the master on port ${master.port} has no replica`);
  await waitForSettledRoles(topology, master, successors);
  // Start from a correct set, at a random phase of the members' renewals.
  await waitForCorrectSet(topology.probe(master).client, group, want(contenders, 0), {
    stableMs: H,
    timeoutMs: 3 * A + 15_000,
    what: 'a correct set before the fault',
  });
  await sleep(H * Math.random());
  const clocks = await mapClocks(topology.probe(master).client, 5);
  // Counted from here: what the promoted replica serves until the set is correct.
  await Promise.all(successors.map((s) => topology.probe(s).client.config('RESETSTAT')));
  const marks = contenders.map((c) => c.mark);

  const fault = hrNow();
  await (plan.fault === 'SIGKILL' ? master.kill('SIGKILL') : master.pause());
  const lostAtRedis = fault - clocks.fromRedis(0);
  const promotion = await waitForPromotion(topology, successors);
  const promoted = topology.probe(promotion.server).client;
  const { correctAt, samples } = await waitForCorrectSet(promoted, group, want(contenders, lostAtRedis + A), {
    stableMs: 3 * H,
    timeoutMs: 3 * A + 20_000,
    what: 'a correct set on the new master',
  });
  const stats = commandStats(await promoted.info('commandstats'));
  const calls = (name: string) => stats.get(name)?.calls ?? 0;
  const quarantine = (await readGroupLog(promoted, group, lostAtRedis - 5)).find((e) => e.type === 'quarantine');
  const after = contenders.flatMap((c, i) => c.events.slice(marks[i]).filter((e) => e.t <= correctAt));
  const activations = after.filter((e) => e.event === 'acquired');
  const expected = want(contenders, 0).expected;
  const round: HaRound = {
    promoted: promotion.at - fault,
    correct: correctAt - fault,
    keptActive: contenders.filter(
      (c, i) =>
        expected.includes(c.member) &&
        believesAt(c, fault) &&
        !c.events.slice(marks[i]).some((e) => e.t <= correctAt && (e.event === 'released' || e.event === 'lost')),
    ).length,
    activations: activations.length,
    activateReasons: activations.map((e) => String(e.reason)),
    deactivateReasons: after.filter((e) => e.event === 'released' || e.event === 'lost').map((e) => String(e.reason)),
    scripts: calls('fcall') + calls('evalsha') + calls('eval'),
    waits: calls('wait'),
  };
  const renewed = samples.find((s) => [...s.leases.values()].some((lease) => lease >= lostAtRedis + A));
  if (renewed) round.reconnected = renewed.t - fault;
  if (quarantine) {
    round.quarantineFrom = clocks.fromRedis(quarantine.time) - fault;
    round.quarantineUntil = clocks.fromRedis(Number(quarantine.fields.until)) - fault;
  }
  if (activations.length) round.firstActivation = Math.min(...activations.map((e) => e.t)) - fault;
  if (plan.fault === 'SIGSTOP') {
    // The old master comes back believing it is the master, until it is told otherwise.
    const resumed = hrNow();
    await master.resume();
    const demoted = await waitForRole(topology, master, 'slave', 30_000);
    if (demoted !== undefined) round.oldMasterDemoted = demoted - resumed;
  }
  await topology.heal(master, promotion.server);
  const settled = await topology.master(group);
  if (settled !== promotion.server) {
    round.note = `the master moved again after the measured failover (port ${promotion.server.port} → ${settled.port})`;
  }
  // Read late: a Sentinel may publish the switch after the members already found the new master.
  const switched = topology.switches.filter((t) => t > fault);
  if (switched.length) round.switchMaster = Math.min(...switched) - fault;
  return round;
}
