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
}

/** When the renewal's reply (or failure) arrives. */
export type RenewalEvent = At & { type: 'renewal' } & (
    | {
        outcome: 'ok';
        /** The member's safe lease deadline on this clock: after it, `isActive()` is false. */
        deadline: bigint;
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
}

/** When the deactivate action is delivered. */
export interface DeactivateEvent extends At {
  type: 'deactivate';
  epoch: string;
  reason: string;
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

export type HistoryEvent =
  | JoinEvent
  | RenewalEvent
  | PrepareEvent
  | ActivateEvent
  | DeactivateEvent
  | LeaveEvent
  | KilledEvent
  | FaultEvent
  | SinkEvent
  | WeightEvent
  | ObserveEvent;

export type HistoryEventType = HistoryEvent['type'];

export type History = readonly HistoryEvent[];

/** The group's parameters, as given to `joinGroup`. */
export interface GroupParams {
  activeGoal: number;
  activationIntervalMs: number;
  heartbeatIntervalMs: number;
}

export type RuleNumber = 1 | 2 | 3 | 4 | 5 | 6;

export interface Violation {
  rule: RuleNumber;
  message: string;
  /** The fewest events that show the violation, in history order. */
  window: readonly HistoryEvent[];
  /** The rule, the message and the window, with times in ms relative to the window's first event. */
  format(): string;
}

export interface CheckResult {
  ok: boolean;
  violations: Violation[];
}
