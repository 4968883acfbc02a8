// The peers through the same Sentinel failovers: redlock's loop and redis-semaphore keep no
// quarantine, so a holder may keep believing while the promoted replica hands its lock out again.
import type { RedisServer } from '@understudy/testkit';
import { hrNow, sleep } from '../clock.js';
import type { ContenderConfig, ContenderKind } from '../contenders/types.js';
import { uniqueKey } from '../context.js';
import { believesAt } from '../group-state.js';
import { beliefIntervals } from '../history.js';
import { Contender } from '../processes.js';
import { type Interval, maxConcurrency, overlapMs } from '../stats.js';
import { SYSTEMS } from '../systems.js';
import type { HaTopology } from '../topology.js';
import { type Fault, waitForPromotion, waitForSettledRoles } from './ha.js';

export interface PeerHaPlan {
  kind: Exclude<ContenderKind, 'understudy' | 'etcd'>;
  fault: Fault;
  activationMs: number;
  heartbeatMs: number;
  rounds: number;
}

/** One failover of a peer; ms after the signal to the master. */
export interface PeerHaRound {
  promoted: number;
  /**
   * From here on (for 3 H) exactly as many processes believed they held as the lock allows;
   * undefined if that did not happen within 3 A + 20 s (the processes are then replaced).
   */
  holders?: number;
  /** How many believed they held when the wait gave up. */
  holdingAtTimeout?: number;
  /** Holders at the fault that kept believing without a break until `holders`. */
  keptHolding: number;
  /** Acquisitions between the fault and `holders`. */
  acquisitions: number;
}

export interface PeerHaResult {
  plan: PeerHaPlan;
  label: string;
  slots: number;
  rounds: PeerHaRound[];
  intervals: Interval[];
  maxConcurrency: number;
  overlapMs: number;
  problems: string[];
}

const EVENT_GRACE_MS = 50;

class HoldersTimeout extends Error {
  constructor(
    slots: number,
    readonly holding: number,
    timeoutMs: number,
  ) {
    super(`not exactly ${slots} holder(s) for 3 H within ${timeoutMs} ms (${holding} believed they held at the end)`);
  }
}
const CHANGES = new Set(['acquired', 'released', 'lost']);

/** Waits until exactly `slots` contenders have believed they hold for `stableMs`; returns since when. */
async function waitForHolders(
  contenders: readonly Contender[],
  slots: number,
  after: number,
  stableMs: number,
  timeoutMs: number,
): Promise<number> {
  const deadline = hrNow() + timeoutMs;
  for (;;) {
    const now = hrNow() - EVENT_GRACE_MS;
    const lastChange = Math.max(
      after,
      ...contenders.flatMap((c) => c.events.filter((e) => CHANGES.has(e.event) && e.t <= now).map((e) => e.t)),
    );
    const holding = contenders.filter((c) => believesAt(c, now)).length;
    if (holding === slots && now - lastChange >= stableMs) return lastChange;
    if (hrNow() > deadline) throw new HoldersTimeout(slots, holding, timeoutMs);
    await sleep(10);
  }
}

export async function runPeerHaCase(
  topology: HaTopology,
  plan: PeerHaPlan,
  progress: (line: string) => void,
): Promise<PeerHaResult> {
  const system = SYSTEMS.find((s) => s.kind === plan.kind);
  if (!system) throw new Error(`no peer named ${plan.kind}`);
  const { activationMs: A, heartbeatMs: H } = plan;
  const config: ContenderConfig = {
    kind: plan.kind,
    key: uniqueKey(`ha-${plan.kind}`),
    redisUrl: '',
    topology: topology.contender,
    etcdHosts: [],
    activationMs: A,
    heartbeatMs: H,
    slots: system.slots,
  };
  const result: PeerHaResult = {
    plan,
    label: system.label,
    slots: system.slots,
    rounds: [],
    intervals: [],
    maxConcurrency: 0,
    overlapMs: 0,
    problems: [],
  };
  const name = `${system.label} ${plan.fault}`;
  const all: Contender[] = [];
  // A belief ends at the latest when its process is killed.
  const killedAt = new Map<Contender, number>();
  const start = async () => {
    const fresh = Array.from(
      { length: system.processes },
      (_, i) => new Contender(config, `${plan.kind}${all.length + i}`),
    );
    all.push(...fresh);
    await Promise.all(fresh.map((c) => c.ready()));
    for (const c of fresh) await c.join();
    await waitForHolders(fresh, system.slots, 0, 3 * H, 3 * A + 15_000);
    return fresh;
  };
  try {
    let contenders = await start();
    for (let round = 1; round <= plan.rounds; round++) {
      const master: RedisServer = await topology.master(config.key);
      await sleep(H * (1 + Math.random()));
      const successors = await topology.successors(master);
      await waitForSettledRoles(topology, master, successors);
      const marks = contenders.map((c) => c.mark);
      const fault = hrNow();
      await (plan.fault === 'SIGKILL' ? master.kill('SIGKILL') : master.pause());
      const promotion = await waitForPromotion(topology, successors);
      const sample: PeerHaRound = { promoted: promotion.at - fault, keptHolding: 0, acquisitions: 0 };
      let end = hrNow();
      try {
        const holders = await waitForHolders(contenders, system.slots, fault, 3 * H, 3 * A + 20_000);
        sample.holders = holders - fault;
        end = holders;
        progress(
          `${name}: round ${round}/${plan.rounds}: holders again ${sample.holders.toFixed(0)} ms after the fault`,
        );
      } catch (error) {
        if (!(error instanceof HoldersTimeout)) throw error;
        sample.holdingAtTimeout = error.holding;
        result.problems.push(`round ${round}: ${error.message}`);
        progress(`${name}: round ${round}/${plan.rounds}: ${error.message}`);
      }
      sample.keptHolding = contenders.filter(
        (c, i) =>
          believesAt(c, fault) &&
          !c.events.slice(marks[i]).some((e) => e.t <= end && (e.event === 'released' || e.event === 'lost')),
      ).length;
      sample.acquisitions = contenders
        .flatMap((c, i) => c.events.slice(marks[i]))
        .filter((e) => e.event === 'acquired' && e.t <= end).length;
      result.rounds.push(sample);
      if (master.paused) await master.resume();
      await topology.heal(master, promotion.server);
      if (sample.holders === undefined) {
        // Each round starts from holders that work: stuck ones are replaced.
        await Promise.all(contenders.map(async (c) => killedAt.set(c, await c.kill('SIGKILL'))));
        contenders = await start();
      }
    }
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    result.problems.push(`stopped early: ${message}`);
    progress(`${name}: stopped early: ${message}`);
  } finally {
    const running = all.filter((c) => !killedAt.has(c));
    await Promise.all(running.map(async (c) => killedAt.set(c, await c.kill('SIGKILL'))));
    for (const c of all) result.intervals.push(...beliefIntervals(c, killedAt.get(c) ?? hrNow()));
    result.maxConcurrency = maxConcurrency(result.intervals);
    result.overlapMs = overlapMs(result.intervals, system.slots);
    const errors = new Map<string, number>();
    for (const e of all.flatMap((c) => c.events)) {
      if (e.event === 'error') errors.set(String(e.message), (errors.get(String(e.message)) ?? 0) + 1);
    }
    for (const [message, count] of errors) result.problems.push(`${count} × ${message}`);
  }
  return result;
}
