/**
 * The history of a group run: what every member, the sink and the test harness did, on one
 * clock. `t` is `process.hrtime.bigint()` in nanoseconds: the monotonic clock, comparable
 * across processes on one machine. Each event says when it must be recorded, because the
 * checker's verdicts depend on it.
 */
interface At {
  t: bigint;
  /** The member the event is about; harness-wide events (`fault`, `heal`) use any name, e.g. 'harness'. */
  member: string;
}

/** Before the join request is sent, so any reaction to it comes after. */
export interface JoinEvent extends At {
  type: 'join';
  weight: number;
  /** The member's clock runs this many times as fast as the real one (default 1): rule 7 scales its lease by it. */
  clockRate?: number;
}

/** When the renewal's reply (or failure) arrives. */
export type RenewalEvent = At & { type: 'renewal' } & (
    | {
        outcome: 'ok';
        /** The member's safe lease deadline on this clock: after it, `isActive()` is false. */
        deadline: bigint;
        /**
         * Optional, from the script tap: when the request this reply answers was written (a
         * bound above the member's t0, which it takes before sending). Rules 7 and 12 need it.
         */
        sentAt?: bigint;
        /** Optional: the t0 the member says it took before sending, on this clock (rule 7). */
        claimedSentAt?: bigint;
        /** Optional, from the script tap: when the reply arrived, before the member handled it (rule 9). */
        repliedAt?: bigint;
      }
    | { outcome: 'failed' | 'unknown' }
  );

/** When the prepare action is delivered. */
export interface PrepareEvent extends At {
  type: 'prepare';
}

/** When the activate action is delivered to the handler (after the deadline check). */
export interface ActivateEvent extends At {
  type: 'activate';
  /** Decimal; may exceed 2^53, so it is compared as a BigInt. */
  epoch: string;
  /**
   * Optional: when the member sent the request whose reply granted this activation. With it,
   * the checker knows that Redis granted this epoch after any activation recorded before
   * that moment, so two near-simultaneous activations recorded out of order are not blamed.
   */
  requestSentAt?: bigint;
  /** Optional: the slot it holds (the feed's rules 13 and 14 need it). */
  slot?: number;
}

/** When the deactivate action is delivered. */
export interface DeactivateEvent extends At {
  type: 'deactivate';
  epoch: string;
  reason: string;
}

/** When the deactivate handler settled (the member may give its slot back only from then on). */
export interface DeactivateSettledEvent extends At {
  type: 'deactivate-settled';
  epoch: string;
}

/**
 * Each time `isActive()` is true right before the member works on the sink, stamped just
 * before that check: the member acts as the holder of `epoch` now (rule 8).
 */
export interface WorkEvent extends At {
  type: 'work';
  epoch: string;
}

/**
 * A script request handed to the connection a second time (an offline queue flushed, or a
 * request resent after a reconnect): S5 forbids both on the lease connection (rule 10).
 */
export interface ResendEvent extends At {
  type: 'resend';
  /** When the request was first handed to the connection. */
  firstSentAt: bigint;
}

/** One slot as Redis held it. */
export interface RedisSlot {
  index: number;
  member: string;
  epoch: string;
  /** 'active' or 'releasing'. */
  state: string;
  /** Whether the holder has a member record. */
  recorded: boolean;
}

/**
 * The group's slots as an administrator read them from Redis, in one atomic read, when they
 * changed (scenario/invariants.ts). `goal` is 0 when the group has no parameters (forgotten
 * or lost): rule 11 does not judge those.
 */
export interface RedisStateEvent extends At {
  type: 'redis-state';
  goal: number;
  slots: RedisSlot[];
  /**
   * Which of a quorum's K servers was read (quorum mode, DESIGN §9), e.g. its index; absent
   * for the one server (or the current master) of every other topology. Rule 11 judges each
   * server on its own; rule 18 judges only states that name their server.
   */
  server?: string;
}

/** When `leave()` is called. */
export interface LeaveEvent extends At {
  type: 'leave';
}

/** Recorded by the harness right after it sends SIGKILL to the member's process. */
export interface KilledEvent extends At {
  type: 'killed';
}

/**
 * Recorded by the harness when it starts (`fault`) and ends (`heal`) a fault. A heal ends the
 * open fault with the same description; a heal whose description matches none ends them all.
 */
export interface FaultEvent extends At {
  type: 'fault' | 'heal';
  fault: string;
}

/** Recorded by the sink when it accepts or rejects work that `member` stamped with `epoch`. */
export interface SinkEvent extends At {
  type: 'sink-accept' | 'sink-reject';
  epoch: string;
}

/** Before the `setWeight` request is sent. */
export interface WeightEvent extends At {
  type: 'weight';
  weight: number;
}

/**
 * When the member learns a group version higher than any it knew, from a renewal reply or
 * from pub/sub. Rule 6 is checked on these events only.
 */
export interface ObserveEvent extends At {
  type: 'observe';
  version: number;
}

/** Recorded by the harness's publisher once the feed's `XADD` returned `id` (rule 13). */
export interface PublishEvent extends At {
  type: 'publish';
  id: string;
}

/**
 * A feed message in `onMessage`: `start` when the handler begins, `done` just before it
 * resolves. `active`, `epoch` and `slot` as the message carried them (rules 13 and 14).
 */
export interface MessageEvent extends At {
  type: 'message';
  id: string;
  phase: 'start' | 'done';
  active: boolean;
  epoch?: string;
  slot?: number;
}

/**
 * When the member saw `member.committed` move to `id`, a message it acted on for `slot` with
 * `epoch`: the commit script accepted its commit (rule 14).
 */
export interface CommitEvent extends At {
  type: 'commit';
  id: string;
  slot: number;
  epoch: string;
}

/** Recorded by the harness once `enqueue` resolved with the task's id (rule 17). */
export interface EnqueueEvent extends At {
  type: 'enqueue';
  task: string;
}

/**
 * A worker's handler and one delivery of a task (rules 15–17): `task-start` when the handler
 * begins; `task-step` each time it acts, stamped just before it checks its signal (as `work`);
 * `task-abort` when its signal aborts; `task-done` just before the handler resolves (the
 * completion is sent after it); `task-end` when the worker's `task` event says how the
 * delivery ended (`completed`: the queue accepted the completion).
 */
export interface TaskEvent extends At {
  type: 'task-start' | 'task-step' | 'task-abort' | 'task-done';
  task: string;
  token: string;
}

export interface TaskEndEvent extends At {
  type: 'task-end';
  task: string;
  token: string;
  outcome: 'completed' | 'failed' | 'stale' | 'unconfirmed';
}

/**
 * Read by the harness at the end of a queue scenario, after its quiet period: the tasks still
 * in the queue (not completed: pending in its consumer group or not read by it yet) and those
 * in its dead letters (rule 17).
 */
export interface QueueStateEvent extends At {
  type: 'queue-state';
  waiting: string[];
  dead: string[];
}

export type HistoryEvent =
  | JoinEvent
  | RenewalEvent
  | PrepareEvent
  | ActivateEvent
  | DeactivateEvent
  | DeactivateSettledEvent
  | WorkEvent
  | ResendEvent
  | RedisStateEvent
  | LeaveEvent
  | KilledEvent
  | FaultEvent
  | SinkEvent
  | WeightEvent
  | ObserveEvent
  | PublishEvent
  | MessageEvent
  | CommitEvent
  | EnqueueEvent
  | TaskEvent
  | TaskEndEvent
  | QueueStateEvent;

export type HistoryEventType = HistoryEvent['type'];

export type History = readonly HistoryEvent[];

/** The group's parameters, as given to `joinGroup`. */
export interface GroupParams {
  activeGoal: number;
  activationIntervalMs: number;
  heartbeatIntervalMs: number;
  /** ρ, the clock drift members allow for (default 0.01, as in DESIGN S1). */
  clockDrift?: number;
}

export type RuleNumber = 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18;

export interface Violation {
  rule: RuleNumber;
  message: string;
  /** The fewest events that show the violation, in history order. */
  window: readonly HistoryEvent[];
  /**
   * Set when the violation involves a member outside the model the rule assumes (its clock
   * drifting beyond ρ, DESIGN S1 (a)): the violation is expected there and does not fail the
   * check. Says which member and how far its clock drifted.
   */
  outsideModel?: string;
  /** The rule, the message and the window, with times in ms relative to the window's first event. */
  format(): string;
}

/** A member whose clock drifted beyond ρ (DESIGN S1 (a)): outside the assumptions S1 is promised under. */
export interface AssumptionBreach {
  member: string;
  /** Its clock's rate against the real one (the `join` event's `clockRate`). */
  clockRate: number;
  /** |clockRate − 1|, against the group's ρ. */
  drift: number;
  rho: number;
  join: JoinEvent;
}

export interface CheckResult {
  /** No violation inside the model: every violation, if any, has `outsideModel` set. */
  ok: boolean;
  /** Every violation found, those outside the model included. */
  violations: Violation[];
  /** Members whose clocks drifted beyond ρ: rules 1, 4, 5 and 12 do not hold them to S1. */
  breaches: AssumptionBreach[];
}
