// durability 'async' against 'replicated' (WAIT 1 before activate) on a Sentinel set: what the
// wait costs a handover, and the rollback it prevents when a master dies before replicating a grant.
import type { Redis } from 'ioredis';
import { hrNow, mapClocks, sleep } from '../clock.js';
import type { ContenderEvent } from '../contenders/types.js';
import { believesAt, sampleGroup, waitForCorrectSet } from '../group-state.js';
import { beliefIntervals } from '../history.js';
import type { Contender } from '../processes.js';
import { type Interval, maxConcurrency, overlapMs } from '../stats.js';
import type { HaTopology } from '../topology.js';
import {
  type Durability,
  epochsGoingBack,
  HA_GOAL,
  HA_MEMBERS,
  haConfig,
  startHaGroup,
  waitForPromotion,
  waitForSettledRoles,
  want,
} from './ha.js';

export interface HandoverRound {
  /** An active member is told to leave → the standby's activate callback, ms. */
  handover: number;
  /** The leaver joined again (heavier than the standby) → its activate callback, ms. */
  preemption: number;
}

export interface RollbackRound {
  /** The new master did not have the standby's grant (the round forced what it meant to). */
  grantLost: boolean;
  /** SIGKILL of the master → the active set correct again on the new master, ms. */
  correct: number;
  /** Activate callbacks the standby got in the round (leave → correct). */
  activations: number;
  /** Activations delivered while only the master held their grant (before the kill). */
  beforeReplication: number;
  /**
   * Activations delivered after the promotion whose grant the new master did not hold (the next
   * read of its slots, ≤ 10 ms later, shows no slot of that epoch for the standby).
   */
  withoutGrant: number;
  /** Activations delivered before the kill that the standby did not keep: taken back later. */
  rolledBack: number;
  /** The grant on the old master → the activate callback, ms; undefined if it was never delivered there. */
  deliveredAfterGrant?: number;
  /** The leave → the standby active for good (its last activation in the round), ms. */
  standbyActive: number;
}

export interface DurabilityResult {
  durability: Durability;
  activationMs: number;
  heartbeatMs: number;
  handovers: HandoverRound[];
  rollbackActivationMs: number;
  rollbacks: RollbackRound[];
  intervals: Interval[];
  maxConcurrency: number;
  overlapMs: number;
  epochsBack: number;
  problems: string[];
}

const lastAcquired = (c: Contender, from: number, until = Number.POSITIVE_INFINITY) =>
  c.events.slice(from).findLast((e) => e.event === 'acquired' && e.t <= until);

/**
 * Keeps the master's writes from its replicas: the replicas' links are closed and may not come
 * back (the default user loses the replication commands; ACLs are not replicated, and the
 * master is killed and restarted fresh right after). Pausing the replicas would not do: the
 * kernel still takes the replication stream into their sockets.
 */
async function cutReplication(master: Redis): Promise<void> {
  await master.call('ACL', 'SETUSER', 'default', '-psync', '-sync', '-replconf');
  await master.call('CLIENT', 'KILL', 'TYPE', 'replica');
  const deadline = hrNow() + 2000;
  while (!(await master.info('replication')).includes('connected_slaves:0')) {
    if (hrNow() > deadline) throw new Error('the replicas stayed connected after CLIENT KILL TYPE replica');
    await sleep(5);
  }
}

/**
 * Graceful handovers in a group of three (weights 30, 20, 10; goal 2): a random active leaves,
 * the standby takes over, the leaver joins again and preempts it.
 */
async function handovers(
  topology: HaTopology,
  contenders: Contender[],
  rounds: number,
  heartbeatMs: number,
  result: DurabilityResult,
  progress: (line: string) => void,
): Promise<void> {
  const group = contenders[0]?.config.key ?? '';
  const standby = contenders[2] as Contender;
  for (let round = 1; round <= rounds; round++) {
    await sleep(heartbeatMs * (0.5 + Math.random()));
    const index = Math.floor(Math.random() * HA_GOAL);
    const leaver = contenders[index] as Contender;
    const from = leaver.mark;
    const standbyFrom = standby.mark;
    leaver.send('leave');
    const leaving = await leaver.waitFor((e) => e.event === 'leaving', 'leaving', 5000, from);
    const taken = await standby.waitFor((e) => e.event === 'acquired', 'the standby to take over', 10_000, standbyFrom);
    await leaver.waitFor((e) => e.event === 'left', 'the leaver to leave', 10_000, from);
    const rejoinFrom = leaver.mark;
    const joined = await leaver.join(HA_MEMBERS[index]?.weight);
    const back = await leaver.waitFor((e) => e.event === 'acquired', 'the leaver to preempt', 10_000, rejoinFrom);
    result.handovers.push({ handover: taken.t - leaving.t, preemption: back.t - joined.t });
    const master = await topology.master(group);
    await waitForCorrectSet(topology.probe(master).client, group, want(contenders, 0), {
      stableMs: heartbeatMs,
      timeoutMs: 15_000,
      what: 'the active set after a preemption',
    });
    if (round % 10 === 0 || round === rounds) progress(`${result.durability}: handover ${round}/${rounds}`);
  }
}

/**
 * The case replication exists for: the replicas are cut off, an active leaves, the standby is
 * granted its slot on the master, and the master is SIGKILLed before any replica has the grant
 * (the Sentinels promote a replica). With 'async' the standby was told
 * `activate` on the old master and the new master takes it back; with 'replicated' it is told
 * only once a replica holds its grant.
 */
async function rollbacks(
  topology: HaTopology,
  contenders: Contender[],
  rounds: number,
  result: DurabilityResult,
  progress: (line: string) => void,
): Promise<void> {
  const A = result.rollbackActivationMs;
  const H = result.heartbeatMs;
  const group = contenders[0]?.config.key ?? '';
  const standby = contenders[2] as Contender;
  const leaver = contenders[1] as Contender;
  for (let round = 1; round <= rounds; round++) {
    const master = await topology.master(group);
    const replicas = await topology.successors(master);
    await waitForSettledRoles(topology, master, replicas);
    const probe = topology.probe(master).client;
    await waitForCorrectSet(probe, group, want(contenders, 0), {
      stableMs: H,
      timeoutMs: 3 * A + 15_000,
      what: 'a correct set before the round',
    });
    const clocks = await mapClocks(probe, 5);
    const marks = contenders.map((c) => c.mark);
    await cutReplication(probe);
    const from = leaver.mark;
    const left = hrNow();
    leaver.send('leave');
    await leaver.waitFor((e) => e.event === 'left', 'the active to leave', 10_000, from);
    // The grant, on the master only.
    let granted: number | undefined;
    while (granted === undefined) {
      const sample = await sampleGroup(probe, group);
      if (sample.active.includes(standby.member)) granted = sample.t;
      else if (hrNow() - left > 5000) throw new Error('the standby was not granted a slot within 5 s');
      else await sleep(2);
    }
    let delivered: ContenderEvent | undefined;
    if (result.durability === 'async') {
      delivered = await standby.waitFor((e) => e.event === 'acquired', 'the standby to activate', 5000, marks[2]);
    } else {
      // Long enough for several WAIT attempts: the activation must stay withheld.
      await sleep(2 * H);
      delivered = standby.events.slice(marks[2]).find((e) => e.event === 'acquired');
    }
    const stillCut = (await probe.info('replication')).includes('connected_slaves:0');
    const fault = hrNow();
    await master.kill('SIGKILL');
    const lostAtRedis = fault - clocks.fromRedis(0);
    const promotion = await waitForPromotion(topology, replicas);
    const expected = [contenders[0]?.member ?? '', standby.member];
    const { correctAt, samples } = await waitForCorrectSet(
      topology.probe(promotion.server).client,
      group,
      { expected, contenders, renewedAfter: lostAtRedis + A },
      { stableMs: 3 * H, timeoutMs: 3 * A + 20_000, what: 'a correct set after the rollback' },
    );
    const activations = standby.events.slice(marks[2]).filter((e) => e.event === 'acquired' && e.t <= correctAt);
    const final = lastAcquired(standby, marks[2] ?? 0, correctAt);
    const heldAfter = (a: ContenderEvent) => {
      const next = samples.find((s) => s.t >= a.t);
      return next?.active.includes(standby.member) === true && next.epochs.get(standby.member) === String(a.epoch);
    };
    const sample: RollbackRound = {
      beforeReplication: activations.filter((a) => a.t < fault).length,
      withoutGrant: activations.filter((a) => a.t > promotion.at && !heldAfter(a)).length,
      grantLost: stillCut && !(samples[0]?.active.includes(standby.member) ?? false),
      correct: correctAt - fault,
      activations: activations.length,
      // Delivered before the kill, and the standby did not keep believing through to the end.
      rolledBack: activations.filter((a) => a.t < fault && !(final === a && believesAt(standby, correctAt))).length,
      standbyActive: (final?.t ?? Number.NaN) - left,
    };
    if (delivered && delivered.t < fault) sample.deliveredAfterGrant = delivered.t - granted;
    result.rollbacks.push(sample);
    progress(
      `${result.durability}: rollback round ${round}/${rounds}: grant ${sample.grantLost ? 'lost' : 'KEPT (round not forced)'}; ` +
        `${sample.activations} activation(s) of the standby, ${sample.rolledBack} taken back; correct ${sample.correct.toFixed(0)} ms after the kill`,
    );
    await topology.heal(master, promotion.server);
    // The leaver joins again (weight 20): it preempts the standby, and the next round starts from there.
    await leaver.join(HA_MEMBERS[1]?.weight);
  }
}

export async function runDurability(
  topology: HaTopology,
  plan: {
    durability: Durability;
    activationMs: number;
    heartbeatMs: number;
    handovers: number;
    rollbackActivationMs: number;
    rollbacks: number;
  },
  progress: (line: string) => void,
): Promise<DurabilityResult> {
  const result: DurabilityResult = {
    durability: plan.durability,
    activationMs: plan.activationMs,
    heartbeatMs: plan.heartbeatMs,
    handovers: [],
    rollbackActivationMs: plan.rollbackActivationMs,
    rollbacks: [],
    intervals: [],
    maxConcurrency: 0,
    overlapMs: 0,
    epochsBack: 0,
    problems: [],
  };
  const all: Contender[] = [];
  const base = { topology: topology.kind, durability: plan.durability, heartbeatMs: plan.heartbeatMs };
  try {
    for (const [what, activationMs] of [
      ['handovers', plan.activationMs],
      ['rollbacks', plan.rollbackActivationMs],
    ] as const) {
      const contenders = await startHaGroup(topology, haConfig(topology, { ...base, activationMs }));
      all.push(...contenders);
      try {
        if (what === 'handovers')
          await handovers(topology, contenders, plan.handovers, plan.heartbeatMs, result, progress);
        else await rollbacks(topology, contenders, plan.rollbacks, result, progress);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        result.problems.push(`${what} stopped early: ${message}`);
        progress(`${plan.durability}: ${what} stopped early: ${message}`);
      } finally {
        const end = hrNow();
        await Promise.all(contenders.map((c) => c.kill('SIGKILL')));
        for (const c of contenders) result.intervals.push(...beliefIntervals(c, end));
        result.epochsBack += epochsGoingBack(contenders);
      }
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.problems.push(`stopped early: ${message}`);
    progress(`${plan.durability}: stopped early: ${message}`);
  } finally {
    await Promise.all(all.map((c) => c.kill('SIGKILL')));
    result.maxConcurrency = maxConcurrency(result.intervals);
    result.overlapMs = overlapMs(result.intervals, HA_GOAL);
    for (const c of all) {
      for (const e of c.events) if (e.event === 'error') result.problems.push(`${c.label}: ${e.message}`);
    }
  }
  return result;
}
