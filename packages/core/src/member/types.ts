import type { Logger } from 'pino';
import type { RedisSource } from '../connections/settings.js';
import type { FeedData } from '../feed/encoding.js';
import type { FeedGap } from '../feed/reader.js';
import type { Clock } from './clock.js';
import type { ActivateReason, DeactivateReason } from './reasons.js';

export type MemberState = 'standby' | 'preparing' | 'active' | 'leaving' | 'left';

export type { ActivateReason, DeactivateReason } from './reasons.js';

export interface PrepareInfo {
  /** Why the hint came: an active's lease is aging, or an activation is about to be delivered. */
  reason: 'lease-aging' | 'activation';
}

export interface ActivateInfo {
  /** Fencing epoch: strictly increasing within the group; stamp downstream work with it. */
  epoch: number;
  /** Slot index, 0 to activeGoal − 1. */
  slot: number;
  reason: ActivateReason;
  /**
   * Aborted when this activation ends (lease lost, preempted, leave, quarantine…), before
   * `deactivate` is delivered: work started on activation can stop without polling `isActive()`.
   * Its `reason` is an ActivationEndedError naming the epoch and the deactivate reason.
   */
  signal: AbortSignal;
}

/** A message of the group feed (DESIGN §10), as `onMessage` receives it. */
export interface GroupMessage {
  /** The feed's id for it (a Redis stream id): publish order. */
  id: string;
  data: FeedData;
  /** True when this member acts on it for its slot: it is committed once `onMessage` resolves. */
  active: boolean;
  /** The activation it is acted on under, when `active`. */
  epoch?: number;
  slot?: number;
}

export interface DeactivateInfo {
  epoch: number;
  reason: DeactivateReason;
}

/** What each advisory says besides its message, by code. */
export interface AdvisoryDetails {
  /** The group refused this member's parameters or mode (ParamMismatchError): the member leaves. */
  PARAM_MISMATCH: { field: 'activeGoal' | 'activationInterval' | 'quorum'; requested: number; current: number };
  /** The activate handler failed: the member gave up the activation and set its weight to 0. */
  DISABLED: { epoch: number };
  /** A handler did not settle within the activation interval. */
  HANDLER_TIMEOUT: { action: 'prepare' | 'activate' | 'deactivate' | 'message' };
  LEASE_LOST: { epoch: number };
  /** Renewals fail: `error` describes the first failure of the outage. */
  REDIS_UNAVAILABLE: { error: string };
  /** Renewals are refused by Redis's ACL: the member's user lacks the group's rules. */
  NO_PERMISSION: { error: string };
  /** Renewals are refused because a key of the group holds what understudy never writes (CorruptStateError). */
  CORRUPT_STATE: { error: string };
  /** Redis may evict any key (`maxmemory-policy allkeys-*`): the group's state can be lost at any time. */
  EVICTION_POLICY: { policy: string };
  /** The group lost its state or changed server: nobody activates for `remainingMs` more. */
  QUARANTINE: { remainingMs: number };
  /** The feed no longer holds messages this member wanted (trimmed by feedMaxLength, or the feed was lost). */
  FEED_GAP: FeedGap;
  TOO_FEW_ACTIVE: { active: number; expected: number };
  TOO_MANY_ACTIVE: { active: number; activeGoal: number };
  /** Quorum mode (DESIGN §9): fewer than Q of the K deployments answer; the member neither activates nor preempts. */
  QUORUM_LOST: { answering: number; quorum: number; servers: number };
}

export type AdvisoryCode = keyof AdvisoryDetails;

/** An advisory of one code: `code`, `message`, who raised it, and that code's details. */
export type AdvisoryOf<C extends AdvisoryCode> = {
  code: C;
  message: string;
  group: string;
  member: string;
} & AdvisoryDetails[C];

/** Advisories, told apart by `code`: `if (a.code === 'LEASE_LOST') a.epoch`. */
export type Advisory = { [C in AdvisoryCode]: AdvisoryOf<C> }[AdvisoryCode];

/** Diagnostics for every renewal attempt (tests and history recorders use them). */
export interface RenewalEvent {
  outcome: 'ok' | 'failed';
  /** Local clock (ms) when the renewal was sent. */
  sentAt: number;
  /** Local clock (ms) when its reply (or its failure) was handled: `receivedAt − sentAt` is the round trip. */
  receivedAt: number;
  /** The local lease deadline after this renewal (ms on the member's clock). */
  leaseDeadline: number;
  error?: unknown;
}

export interface MemberEvents {
  prepare: [PrepareInfo];
  activate: [ActivateInfo];
  deactivate: [DeactivateInfo];
  state: [{ from: MemberState; to: MemberState }];
  advisory: [Advisory];
  error: [Error];
  renewal: [RenewalEvent];
  /** The member learned a newer group version (from a renewal reply or an announcement). */
  version: [number];
}

/**
 * Listeners that `joinGroup` attaches before it joins, so that they also hear what the join
 * itself emits (its renewal, the group's version) before `joinGroup` resolves.
 */
export type MemberListeners = { [E in keyof MemberEvents]?: (...args: MemberEvents[E]) => void };

export interface JoinOptions {
  /**
   * An ioredis client or Cluster (duplicated, never used directly), a URL, or options; or an
   * array of K independent deployments (K odd, 3–7): quorum mode (DESIGN §9).
   */
  redis: RedisSource | readonly RedisSource[];
  group: string;
  /** 1–65535; higher ranks first. */
  weight: number;
  /** N, fixed by the group's first member (default 1). */
  activeGoal?: number;
  /** H in ms (default 1000). */
  heartbeatInterval?: number;
  /** P in ms; 0 = no prepare hints (default). */
  preparationInterval?: number;
  /** A in ms (default 3000). */
  activationInterval?: number;
  /** Default `host:pid:random`. */
  memberId?: string;
  logger?: Logger;
  /** Aborting it makes the member leave. */
  signal?: AbortSignal;
  onPrepare?: (info: PrepareInfo) => unknown;
  onActivate?: (info: ActivateInfo) => unknown;
  onDeactivate?: (info: DeactivateInfo) => unknown;
  /**
   * The group feed (DESIGN §10): every message published after the member joined, in order,
   * serialized with the other handlers. While active, a message is committed for the slot once
   * this resolves. Without it the member reads no feed.
   */
  onMessage?: (message: GroupMessage) => unknown;
  /** Event listeners attached before the join (the same as `member.on(…)` after it, plus the join's own events). */
  listeners?: MemberListeners;
  /** Key prefix (default `understudy`). */
  prefix?: string;
  /** ρ: the bound on this machine's clock drift against Redis's (default 0.01). */
  clockDrift?: number;
  /** The monotonic clock (tests inject a drifting one). */
  clock?: Clock;
  /**
   * `'replicated'`: deliver `activate` only once a replica has the grant (Redis `WAIT`), so a
   * failover of Redis cannot roll the activation back; costs a replication round trip per
   * activation, and nobody activates while no replica answers. Default `'async'`.
   */
  durability?: 'async' | 'replicated';
}
