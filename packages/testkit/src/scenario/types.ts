import type { ChaosProxy } from '../chaos/proxy.js';
import type { HistoryEvent, Violation } from '../history/types.js';
import type { StartSentinelSetOptions } from '../redis/sentinel.js';
import type { StartRedisOptions } from '../redis/types.js';
import type { GroupIntervals } from './member-args.js';
import type { MemberProcess } from './member-process.js';
import type { TopologyKind } from './topology.js';
import type { QueueParams } from './worker-args.js';

export interface MemberSpec {
  /** A member restarted with the same id (a supervisor's fixed `--member-id`) is the same member to the checker. */
  id: string;
  /** Distinct weights keep the expected ranking independent of join order. */
  weight: number;
  /** The member's clock runs this many times as fast as the real one (default 1). */
  clockRate?: number;
  /** Intervals or goal other than the scenario's: a member restarted with other parameters. */
  params?: Partial<GroupIntervals>;
  /** Aborts the join's AbortSignal this many ms after the join began (inside it, or after it). */
  abortJoinAfterMs?: number;
  /** How long its deactivate handler takes, in ms (default 0; below A). */
  deactivateMs?: number;
}

/** How long `spawn` waits: until the member joined (default), or until its first join attempt ended either way. */
export type SpawnUntil = 'joined' | 'attempted';

/**
 * A member's own chaos proxies: to the group's Redis, on a proxied Sentinel set to each
 * Sentinel, and in quorum mode to each of the K servers (`servers`, in server order; no `redis`).
 */
export interface MemberLinks {
  redis: ChaosProxy | undefined;
  sentinels: ChaosProxy[];
  servers: ChaosProxy[];
}

/** A fault scenario without its faults (`Scenario.run`, in harness.ts): its group, its members, and how it passes. */
export interface ScenarioSpec {
  name: string;
  /** What happens, in one sentence. */
  title: string;
  /** How it passes beyond the checker's rules, in words. */
  criteria: string;
  params: GroupIntervals;
  members: readonly MemberSpec[];
  /**
   * Where the group lives (default `single`). On a single Redis (and on a `replicated` pair's
   * primary) every member reaches it through a chaos proxy of its own (`run.link()`); on
   * `sentinel` and `cluster` members connect as Sentinel or Cluster clients, directly — except
   * on a `proxied` Sentinel set, where each member reaches the first master and each Sentinel
   * through proxies of its own (`run.link()`, `run.sentinelLinks()`).
   */
  topology?: TopologyKind;
  /** Options of the single Redis, or of both servers of a `replicated` pair. */
  redis?: StartRedisOptions;
  /** Options of the Sentinel set (`topology` sentinel only). */
  sentinel?: StartSentinelSetOptions;
  /** K, the independent servers of a `quorum` scenario (3–7, default 3); `redis` options apply to each. */
  quorum?: { servers: number };
  /**
   * The checker's slack for this scenario's liveness rules, in ms (default 500, as in L1):
   * after a failover, members must also find the new master, which a heal on a single
   * server does not ask of them. A soak's `slackMs` option overrides it.
   */
  slackMs?: number;
  /** With the group feed: every member gets an `onMessage` that takes `messageMs` (rules 13, 14). */
  feed?: { messageMs: number };
  /** With a queue: its options for the workers the scenario starts (`run.spawnWorker`; rules 15–17). */
  queue?: QueueParams;
  /** Criteria beyond the checker's rules: returns those not met, in words. */
  verify?(outcome: ScenarioOutcome): string[];
  /** Figures of the run worth reporting (ms), e.g. how long the Redis failover took; undefined if not seen. */
  measure?(outcome: ScenarioOutcome): Record<string, number | undefined>;
}

export interface RunOptions {
  seed: number;
  /** The history-recording member program (test/fixtures/history-member.ts). */
  memberScript: string;
  /** The queue-worker program (test/fixtures/queue-worker.ts): needed by scenarios with a queue. */
  workerScript?: string;
  /** For scenarios that run for a while (churn), in ms. */
  durationMs?: number;
  /** Aborting stops the run at once: everything it started is stopped, nothing is checked. */
  signal?: AbortSignal;
  /** Keep the run's folder (histories, report): always, or only when it fails (default). */
  keep?: 'always' | 'on-failure';
  /** Where run folders go (default: <tmp>/understudy-chaos). */
  resultsDir?: string;
  /** Progress lines. */
  log?: (line: string) => void;
  /** The checker's slack for its liveness rules, in ms (default: the scenario's `slackMs`, else 500 as in L1). */
  slackMs?: number;
}

export interface ScenarioOutcome {
  history: readonly HistoryEvent[];
  /** What the scenario noted: instants (`run.note()`, hrtime ns), and other values it set. */
  notes: ReadonlyMap<string, bigint>;
  /** Every member process of the run, restarted ones included. */
  members: readonly MemberProcess[];
  /** The members the scenario aimed its faults at. */
  victims: readonly string[];
  params: GroupIntervals;
}

export interface ScenarioResult {
  scenario: string;
  seed: number;
  passed: boolean;
  /** Faults injected (`fault` events). */
  faults: number;
  /** Violations inside the model: any of them fails the run. */
  violations: Violation[];
  /**
   * Violations that involve a member outside the model (a clock drifting beyond ρ): expected,
   * reported, not failing the run (`CheckResult.breaches`, `Violation.outsideModel`).
   */
  outsideModel: Violation[];
  /** Scenario criteria not met (besides the checker's rules). */
  unmet: string[];
  /** The scenario's own figures (`Scenario.measure`), in ms. */
  measures: Record<string, number | undefined>;
  /** Worst time from a heal to convergence, in ms; undefined if no fault healed. */
  worstConvergenceMs: number | undefined;
  /** Fault episodes after which the group had not converged before the next fault or the end. */
  unconverged: number;
  sinkAccepted: number;
  /** Stale work the sink refused: fencing at work. */
  sinkRejected: number;
  advisories: Record<string, number>;
  durationMs: number;
  /** The run's folder, when kept: histories, report.txt. */
  dir: string | undefined;
}
