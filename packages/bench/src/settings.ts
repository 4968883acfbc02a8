import type { FeedSettings } from './scenarios/feed.js';

/** What a run measures, by mode. Lease settings are shared by every system. */
export interface RunSettings {
  lease: { activationMs: number; heartbeatMs: number };
  failoverRounds: number;
  handoverRounds: number;
  preemptionRounds: number;
  /** Members of one group, real members in one process: renewal cost and a member's own cost. */
  groupSizes: number[];
  /** Group sizes driven by the benchmark with core's scripts (no member objects), up to 10,000. */
  drivenSizes: number[];
  /** Many small groups on one Redis, over `processes` member processes. */
  fleet: { groups: number; perGroup: number; processes: number; heartbeatMs: number; activationMs: number };
  costWindows: number;
  costWindowMs: number;
  overheadCalls: number;
  ha: HaSettings;
}

/** Counts of the HA family (Sentinel and Cluster failovers, durability). */
export interface HaSettings {
  /** Master losses per case (topology × fault × lease × durability). */
  rounds: number;
  /** Graceful handovers per durability mode. */
  handovers: number;
  /** Master losses before replication, per durability mode. */
  rollbacks: number;
}

/**
 * Leases of the HA cases: A shorter than a Redis failover (the members' leases lapse first, so
 * the new master quarantines and grants again), and A longer than one (the actives can keep
 * their slots). H is the same as the other benchmarks'.
 */
export const HA_LEASES = Object.freeze([
  Object.freeze({ activationMs: 1000, heartbeatMs: 200 }),
  Object.freeze({ activationMs: 4000, heartbeatMs: 200 }),
] as const);

const LEASE = Object.freeze({ activationMs: 1000, heartbeatMs: 200 });

export const QUICK: RunSettings = Object.freeze({
  lease: LEASE,
  failoverRounds: 5,
  handoverRounds: 12,
  preemptionRounds: 8,
  groupSizes: [10, 100, 1000],
  drivenSizes: [10, 100, 1000],
  // A tenth of the full fleet: the report scales its CPU per renewal to 10,000 renewals/s.
  fleet: { groups: 100, perGroup: 10, processes: 1, heartbeatMs: 1000, activationMs: 3000 },
  costWindows: 2,
  costWindowMs: 2000,
  overheadCalls: 5000,
  ha: { rounds: 1, handovers: 10, rollbacks: 1 },
});

export const FULL: RunSettings = Object.freeze({
  lease: LEASE,
  failoverRounds: 40,
  handoverRounds: 100,
  preemptionRounds: 50,
  groupSizes: [10, 100, 1000],
  drivenSizes: [10, 100, 1000, 10_000],
  // A member costs its process about as much CPU as Redis spends on it: two processes share the fleet.
  fleet: { groups: 1000, perGroup: 10, processes: 2, heartbeatMs: 1000, activationMs: 3000 },
  costWindows: 5,
  costWindowMs: 3000,
  overheadCalls: 20_000,
  ha: { rounds: 10, handovers: 100, rollbacks: 8 },
});

/** Intervals of the cost runs: understudy's defaults (H = 1 s, A = 3 s). */
export const COST_LEASE = Object.freeze({ heartbeatMs: 1000, activationMs: 3000 });

/**
 * Driven groups: every size at the same rate, so that only the group size differs (at a few
 * calls a second, every call finds cold caches). A is long enough for every member of the
 * largest group to renew in time although the floor's windows take turns with the renewals'
 * (10,000 members at 2,000/s: a member renews every 5 s of renewal windows, up to 11 s apart);
 * the renew script does not depend on A.
 */
export const DRIVEN_LEASE = Object.freeze({ heartbeatMs: 1000, activationMs: 20_000, rate: 2000 });

/** The worker count of the throughput cells that the queue's targets read. */
export const TARGET_WORKERS = 4;

/** Counts of the queue family (understudy's queue beside BullMQ). */
export interface QueueSettings {
  /** Tasks per throughput run with the timed handler. */
  throughputTasks: number;
  /**
   * Tasks per throughput run with the no-op handler: more, since such a run is over in a fraction
   * of a second at that count, short enough for the machine's moment to decide it.
   */
  noOpTasks: number;
  /** Runs per throughput cell and system (the systems take turns; the tables show medians). */
  throughputRuns: number;
  /**
   * Runs per system of the cells the targets read (TARGET_WORKERS workers): more, since a run's
   * Redis CPU per task moves by a tenth or more from run to run, and a target compares medians.
   */
  targetRuns: number;
  /** Tasks per worker process of the unmeasured run per system before the first cell. */
  warmUpTasksPerWorker: number;
  workerCounts: number[];
  /** Handler time of the throughput cells (0: returns at once; else awaits a timer). */
  taskMs: number[];
  latencyTasks: number;
  latencyWorkers: number;
  /** Mean gap between two enqueues of the latency run, ms (uniform, ± half). */
  latencyGapMs: number;
  /** Kill rounds, and stall rounds per kind of handler, of the systems that re-deliver within seconds. */
  faultRounds: number;
  /** The same for BullMQ's defaults (a minute or more per round; run at once, beside the others). */
  slowRounds: number;
  /** The group feed (understudy only: BullMQ has no message every worker receives). */
  feed: FeedSettings;
  /** Runs per system of the Redis instruction count (callgrind; 4 workers, no-op tasks), and tasks per run. */
  instructionRuns: number;
  instructionTasks: number;
}

export const QUEUE_QUICK: QueueSettings = Object.freeze({
  throughputTasks: 1000,
  noOpTasks: 3000,
  throughputRuns: 3,
  targetRuns: 3,
  warmUpTasksPerWorker: 250,
  workerCounts: [1, 4, 16],
  taskMs: [0, 5],
  latencyTasks: 50,
  latencyWorkers: 4,
  latencyGapMs: 20,
  faultRounds: 3,
  slowRounds: 1,
  feed: { members: 3, messages: 100, gapMs: 20, failovers: 3, streamGapMs: 10 },
  instructionRuns: 1,
  instructionTasks: 1000,
});

export const QUEUE_FULL: QueueSettings = Object.freeze({
  throughputTasks: 2000,
  noOpTasks: 10_000,
  // Five: on two shared cores a no-op run's rate moves by up to half from run to run.
  throughputRuns: 5,
  // Twelve, a multiple of the three systems: each runs first, second and third as often.
  targetRuns: 12,
  warmUpTasksPerWorker: 1000,
  workerCounts: [1, 4, 16],
  taskMs: [0, 5],
  latencyTasks: 300,
  latencyWorkers: 4,
  latencyGapMs: 20,
  faultRounds: 6,
  slowRounds: 1,
  feed: { members: 3, messages: 300, gapMs: 20, failovers: 6, streamGapMs: 10 },
  instructionRuns: 3,
  instructionTasks: 2000,
});
