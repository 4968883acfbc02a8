import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { Cluster } from 'ioredis';
import { type Logger, pino } from 'pino';
import { acquireLink, type Link, permissionError } from '../connections.js';
import {
  ConfigError,
  CorruptStateError,
  HandlerError,
  LeftError,
  MemberExistsError,
  ParamMismatchError,
  PermissionError,
  RedisUnavailableError,
  UnderstudyError,
} from '../errors.js';
import { DEFAULT_PREFIX, type GroupKeys, groupKeys } from '../keys.js';
import {
  commandTimeoutFor,
  MEMBER_DEFAULTS,
  validateActiveGoal,
  validateClockDrift,
  validateDurability,
  validateGroupName,
  validateHandler,
  validateIntervals,
  validateLeaseBudget,
  validateMemberId,
  validatePrefix,
  validateRedisSource,
  validateWeight,
} from '../options.js';
import { guardReplication } from '../replication-guard.js';
import {
  type Announcement,
  type MemberView,
  parseAnnouncement,
  parseView,
  runScript,
  type ScriptName,
  type ServerRole,
} from '../scripts.js';
import { ActionQueue, type Outcome, runHandler } from './actions.js';
import { type Clock, lagMonitor, monotonicClock } from './clock.js';
import type {
  ActivateInfo,
  ActivateReason,
  AdvisoryCode,
  DeactivateInfo,
  DeactivateReason,
  JoinOptions,
  MemberEvents,
  MemberState,
  PrepareInfo,
} from './types.js';

/** The transitions a member may make; anything else is a bug and throws. */
const TRANSITIONS: Readonly<Record<MemberState, readonly MemberState[]>> = Object.freeze({
  standby: ['preparing', 'active', 'leaving'],
  preparing: ['standby', 'active', 'leaving'],
  active: ['standby', 'leaving'],
  leaving: ['left'],
  left: [],
});

/** What the group (Redis) last said about this member's role. */
interface ServerRoleView {
  role: ServerRole;
  epoch: number;
  slot: number;
  reason: string;
  /**
   * Said by a renewal, which carries what the member holds and knows: only such a reply may
   * deliver an activation (S6: a server that lost writes reports a slot only to its claimant).
   */
  confirmed: boolean;
}

interface Held {
  epoch: number;
  slot: number;
  reason: ActivateReason;
}

interface Settings {
  weight: number;
  activeGoal: number;
  heartbeatInterval: number;
  preparationInterval: number;
  activationInterval: number;
  clockDrift: number;
  clock: Clock;
  durability: 'async' | 'replicated';
}

/** The group's incarnation (createdAt) and version, as one server said them. */
interface GroupVersion {
  incarnation: number;
  version: number;
}

interface CallResult {
  view: MemberView;
  /** Member clock when the script was sent, and halfway between sending and the reply. */
  sentAt: number;
  midpoint: number;
}

/**
 * A member of a fault-tolerance group. Its state machine is described in
 * docs/member-state-machine.md; every change of `state` goes through `#transition`.
 */
export class Member extends EventEmitter<MemberEvents> {
  readonly group: string;
  readonly id: string;
  readonly #settings: Settings;
  readonly #options: JoinOptions;
  readonly #keys: GroupKeys;
  readonly #log: Logger;
  readonly #actions = new ActionQueue();
  readonly #host = hostname();
  /** Tells this member object's join apart from another's with the same id (see join.lua). */
  readonly #nonce = randomBytes(6).toString('hex');
  #link: Link | undefined;

  #state: MemberState = 'standby';
  #weight: number;
  #groupGoal: number;
  #held: Held | undefined;
  #server: ServerRoleView = { role: 'standby', epoch: 0, slot: -1, reason: '', confirmed: false };
  #quarantined = false;
  /** The group's incarnation and version in the latest reply of the server (sent with every renewal, S6). */
  #known: GroupVersion = { incarnation: 0, version: -1 };
  /** The latest announcement heard, or reply received: announcements only trigger renewals (S7). */
  #heard: GroupVersion = { incarnation: 0, version: -1 };
  /** The highest epoch the group told this member of for itself (sent with every renewal: S2, S6). */
  #epochFloor = 0;
  /**
   * The epoch ledger's floor: every epoch up to it was delivered, released or revoked, and is
   * never delivered (again). Epochs only grow, so one number is the whole ledger.
   */
  #retiredFloor = 0;
  /** When the server said this member's lease ends (Redis ms), sent with every renewal (S6). */
  #serverLeaseEnd = 0;
  /** The group's activation interval, as its server said: the lease never outlasts it (S4). */
  #groupActivation = 0;
  #leaseDeadline = Number.NEGATIVE_INFINITY;
  #prepared = false;
  #pendingActivation: number | undefined;
  /** Epochs whose deactivate handler has not settled: their slot must not be released yet. */
  readonly #settling = new Set<number>();
  readonly #releasing = new Set<number>();
  #early: Announcement[] | undefined = [];
  #started = false;

  #renewTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #watchTimer: NodeJS.Timeout | undefined;
  #prepareTimer: NodeJS.Timeout | undefined;
  #renewing = false;
  #renewAgain = false;
  #lastRenewalStart = 0;

  /** leave() began: no new activations, no releases (the leave script releases). */
  #closing = false;
  /** Set once the deactivate handler settled during leave(): no renewal may follow the leave script. */
  #renewalsStopped = false;
  /** The activate handler failed: the weight stays 0 until the group has it (the disable script ran). */
  #disabling = false;
  #leaving: Promise<void> | undefined;
  #redisDown = false;
  #tooFewSince: number | undefined;
  #tooFewReported = false;
  #quarantineReported = 0;
  #heartbeatWarned = false;

  /** Use `joinGroup()`. */
  constructor(options: JoinOptions) {
    super();
    this.group = validateGroupName(options.group);
    this.id = validateMemberId(options.memberId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`);
    const intervals = validateIntervals({
      heartbeatInterval: options.heartbeatInterval ?? MEMBER_DEFAULTS.heartbeatInterval,
      preparationInterval: options.preparationInterval ?? MEMBER_DEFAULTS.preparationInterval,
      activationInterval: options.activationInterval ?? MEMBER_DEFAULTS.activationInterval,
    });
    this.#settings = {
      weight: validateWeight(options.weight),
      activeGoal: validateActiveGoal(options.activeGoal ?? MEMBER_DEFAULTS.activeGoal),
      ...intervals,
      clockDrift: validateClockDrift(options.clockDrift ?? MEMBER_DEFAULTS.clockDrift),
      durability: validateDurability(options.durability ?? MEMBER_DEFAULTS.durability),
      clock: options.clock ?? monotonicClock,
    };
    validateLeaseBudget(
      intervals,
      this.#settings.clockDrift,
      commandTimeoutFor(intervals.heartbeatInterval),
      lagMonitor.baseMargin,
    );
    if (this.#settings.durability === 'replicated' && options.redis instanceof Cluster) {
      throw new ConfigError(
        'durability',
        'replicated',
        'is not available with Redis Cluster yet (WAIT has no key to route by)',
      );
    }
    validateRedisSource(options.redis);
    validateHandler('onPrepare', options.onPrepare);
    validateHandler('onActivate', options.onActivate);
    validateHandler('onDeactivate', options.onDeactivate);
    this.#options = options;
    this.#keys = groupKeys(this.group, validatePrefix(options.prefix ?? DEFAULT_PREFIX));
    this.#weight = this.#settings.weight;
    this.#groupGoal = this.#settings.activeGoal;
    const bindings = { component: 'understudy-member', group: this.group, member: this.id };
    this.#log = options.logger?.child(bindings) ?? pino({ enabled: false });
  }

  /** 'standby' | 'preparing' | 'active' | 'leaving' | 'left' */
  get state(): MemberState {
    return this.#state;
  }

  /** Fencing epoch of the current activation, or undefined when not active. */
  get epoch(): number | undefined {
    return this.#state === 'active' ? this.#held?.epoch : undefined;
  }

  get weight(): number {
    return this.#weight;
  }

  /** Synchronous: active, and the lease deadline (S4) has not passed. Guard critical sections with it. */
  isActive(): boolean {
    return this.#state === 'active' && this.#held !== undefined && this.#settings.clock.now() < this.#leaseDeadline;
  }

  /** Changes this member's rank at run time (1–65535). */
  async setWeight(weight: number): Promise<void> {
    validateWeight(weight);
    if (this.#closing) throw new LeftError(`member ${this.id} has left group ${this.group}`);
    this.#disabling = false;
    // The member is the authority on its weight: renewals sent from now on carry the new one, so
    // a server that lost the change (a failover to a lagging replica) is told again. A call that
    // fails takes it back: the renewals then carry the old one.
    const previous = this.#weight;
    this.#weight = weight;
    let view: CallResult;
    try {
      view = await this.#call('set_weight', [
        this.#keys.events,
        this.id,
        weight,
        this.#settings.preparationInterval,
        this.#nonce,
      ]);
    } catch (error) {
      if (this.#weight === weight) this.#weight = previous;
      if (error instanceof MemberExistsError) this.#expelled(error);
      throw error;
    }
    this.#applyView(view, 'other');
  }

  /** Leaves the group: deactivates first if active (reason `leave`), then hands the slot over at once. Idempotent. */
  leave(): Promise<void> {
    this.#leaving ??= this.#leave();
    return this.#leaving;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.leave();
  }

  /** @internal Connects, subscribes, joins; called once by `joinGroup`. */
  async start(): Promise<void> {
    const { signal } = this.#options;
    signal?.throwIfAborted();
    const { heartbeatInterval: h, activationInterval: a } = this.#settings;
    lagMonitor.acquire();
    try {
      this.#link = await acquireLink(this.#options.redis, commandTimeoutFor(h), a);
      await guardReplication(this.#options.redis, this.#link.lease, a, this.#log);
      signal?.throwIfAborted();
      await this.#link.subscriber.subscribe(this.#keys.events, this.#onMessage, this.#onResync, a);
      signal?.throwIfAborted();
      const joined = await this.#join();
      this.#lastRenewalStart = joined.sentAt;
      this.#extendLease(joined.sentAt, this.#margin(), joined.view.activationInterval);
      this.#applyView(joined, 'join');
    } catch (error) {
      await this.#close();
      this.#transition('leaving');
      this.#transition('left');
      if (signal?.aborted) throw signal.reason;
      if (error instanceof UnderstudyError) throw error;
      throw (
        permissionError(error, this.#options.redis, `join group ${this.group}`, this.group) ??
        new RedisUnavailableError(`member ${this.id} could not join group ${this.group}: ${describe(error)}`, {
          cause: error,
        })
      );
    }
    // Aborted while the join script ran: the member is in the group, so it leaves it again.
    if (signal?.aborted) {
      await this.leave();
      signal.throwIfAborted();
    }
    this.#log.info({ weight: this.#weight, version: this.#known.version }, 'joined');
    void this.#checkEvictionPolicy();
    if (a < 2 * h) {
      this.#log.warn(
        { heartbeatInterval: h, activationInterval: a },
        'activationInterval is below twice heartbeatInterval: one late renewal will cost the lease',
      );
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#scheduleRenewal(this.#lastRenewalStart + h);
    // Deliver the first actions after joinGroup() resolved, so listeners added then see them.
    setImmediate(() => {
      this.#started = true;
      const early = this.#early ?? [];
      this.#early = undefined;
      for (const announcement of early) this.#applyAnnouncement(announcement);
      this.#converge();
    });
  }

  /**
   * DESIGN §6: a Redis that may evict any key (an `allkeys-*` policy) can drop the group's state
   * at any moment; the scripts notice and quarantine (S6), but every eviction costs a failover.
   */
  async #checkEvictionPolicy(): Promise<void> {
    const lease = this.#link?.lease;
    if (!lease) return;
    try {
      for (const node of lease instanceof Cluster ? lease.nodes('master') : [lease]) {
        const policy = /maxmemory_policy:(\S+)/.exec(await node.info('memory'))?.[1];
        if (policy?.startsWith('allkeys-')) {
          this.#advise(
            'EVICTION_POLICY',
            `Redis may evict the group's keys (maxmemory-policy ${policy}); use noeviction or a volatile-* policy`,
            { policy },
          );
          return;
        }
      }
    } catch (error) {
      this.#log.debug({ error: describe(error) }, 'could not read the eviction policy');
    }
  }

  /**
   * Runs the join script; a reply that timed out (a busy process, a slow Redis) is retried
   * until one activation interval has passed: the nonce makes a join that did run idempotent.
   */
  async #join(): Promise<CallResult> {
    const s = this.#settings;
    const args = [
      this.#keys.events,
      this.id,
      this.#weight,
      s.activeGoal,
      s.activationInterval,
      s.heartbeatInterval,
      s.preparationInterval,
      this.#host,
      process.pid,
      this.#nonce,
    ];
    const giveUpAt = s.clock.now() + s.activationInterval;
    for (;;) {
      try {
        return await this.#call('join', args);
      } catch (error) {
        if (!(error instanceof RedisUnavailableError) || s.clock.now() >= giveUpAt) throw error;
        this.#log.debug({ error: describe(error) }, 'join did not answer in time; retrying');
        await sleep(Math.min(50, s.heartbeatInterval));
      }
    }
  }

  // ---- renewals ------------------------------------------------------------------------

  #scheduleRenewal(at: number): void {
    clearTimeout(this.#renewTimer);
    if (this.#renewalsStopped) return;
    this.#renewTimer = setTimeout(() => void this.#renew(), Math.max(0, at - this.#settings.clock.now()));
    this.#renewTimer.unref();
  }

  /** Renews now, or right after the renewal in flight. Never more than one in flight. */
  async #renew(): Promise<void> {
    if (this.#renewalsStopped) return;
    if (this.#renewing) {
      this.#renewAgain = true;
      return;
    }
    this.#renewing = true;
    try {
      do {
        this.#renewAgain = false;
        await this.#renewOnce();
      } while (this.#renewAgain && !this.#renewalsStopped);
    } finally {
      this.#renewing = false;
    }
    this.#scheduleRenewal(this.#lastRenewalStart + this.#settings.heartbeatInterval);
  }

  async #renewOnce(): Promise<void> {
    const s = this.#settings;
    const held = this.#held;
    const margin = this.#margin();
    let result: CallResult;
    try {
      result = await this.#call('renew', [
        this.#keys.events,
        this.id,
        this.#weight,
        this.#groupGoal,
        s.activationInterval,
        s.heartbeatInterval,
        s.preparationInterval,
        this.#host,
        process.pid,
        held?.epoch ?? 0,
        held?.slot ?? -1,
        this.#nonce,
        this.#known.incarnation,
        this.#known.version,
        Math.max(this.#epochFloor, held?.epoch ?? 0),
        this.#serverLeaseEnd,
      ]);
    } catch (error) {
      if (error instanceof ParamMismatchError || error instanceof MemberExistsError) {
        this.#expelled(error);
        return;
      }
      this.#lastRenewalStart = s.clock.now();
      this.#emitSafe('renewal', {
        outcome: 'failed',
        sentAt: this.#lastRenewalStart,
        receivedAt: this.#lastRenewalStart,
        leaseDeadline: this.#leaseDeadline,
        error,
      });
      if (describe(error).includes('timed out')) this.#link?.resetLease();
      if (!this.#redisDown) {
        this.#redisDown = true;
        this.#advise(renewalFailure(error), `renewal failed: ${describe(error)}`, { error: describe(error) });
      }
      return;
    }
    this.#lastRenewalStart = result.sentAt;
    if (this.#closing) return;
    if (this.#redisDown) {
      this.#redisDown = false;
      this.#log.info('Redis answers again');
    }
    // S4: a reply handled after the deadline (its timer not yet run) must not revive the lease.
    this.#checkDeadline();
    this.#extendLease(result.sentAt, margin, result.view.activationInterval);
    if (result.view.rejoined)
      this.#log.warn('the group had dropped this member (lease lapsed or state lost); rejoined');
    this.#applyView(result, 'renewal');
  }

  /**
   * The group no longer takes this member object: it runs with other parameters now (its
   * members all left, or its config was lost, and a member with other parameters formed it
   * again), or another object holds the id (this one was dropped meanwhile). It stops and leaves.
   */
  #expelled(error: ParamMismatchError | MemberExistsError): void {
    if (error instanceof ParamMismatchError) {
      this.#advise('PARAM_MISMATCH', error.message, {
        field: error.field,
        requested: error.requested,
        current: error.current,
      });
    } else {
      this.#log.error({ error: error.message }, 'another member object holds this id now; leaving');
    }
    if (this.listenerCount('error') > 0) this.#emitSafe('error', error);
    void this.leave();
  }

  /**
   * δ: the measured event-loop lag, capped so that a stall that is over cannot leave the member
   * without a usable lease (at least 2 H of it remain). A stall beyond the cap breaks S1's
   * assumption (b) however δ is chosen; fencing is what protects data then.
   */
  #margin(): number {
    const s = this.#settings;
    const cap = s.activationInterval * (1 - s.clockDrift) - 2 * s.heartbeatInterval;
    return Math.min(lagMonitor.margin(), Math.max(lagMonitor.baseMargin, cap));
  }

  /**
   * S4: a renewal sent at t0 lets the member act until t0 + A·(1−ρ) − δ, with the group's A
   * where it is shorter than the member's own (Redis gives the lease the group's A).
   */
  #extendLease(sentAt: number, margin: number, groupActivation: number): void {
    const s = this.#settings;
    if (groupActivation > 0) this.#groupActivation = groupActivation;
    const a = Math.min(s.activationInterval, this.#groupActivation || s.activationInterval);
    const deadline = sentAt + a * (1 - s.clockDrift) - margin;
    if (deadline > this.#leaseDeadline) this.#leaseDeadline = deadline;
    this.#emitSafe('renewal', {
      outcome: 'ok',
      sentAt,
      receivedAt: s.clock.now(),
      leaseDeadline: this.#leaseDeadline,
    });
    if (this.#held) this.#armDeadline();
  }

  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    const delay = this.#leaseDeadline - this.#settings.clock.now();
    this.#deadlineTimer = setTimeout(() => this.#checkDeadline(), Math.max(0, delay));
    this.#deadlineTimer.unref();
  }

  /** Timers can fire a little early: "not yet" re-arms, it never gives up. */
  #checkDeadline(): void {
    if (!this.#held) return;
    if (this.#settings.clock.now() < this.#leaseDeadline) {
      this.#armDeadline();
      return;
    }
    this.#advise('LEASE_LOST', 'no renewal succeeded before the lease deadline; deactivating', {
      epoch: this.#held.epoch,
    });
    this.#demote('lease-lost', 'release');
  }

  /** Runs a member script and times it on the member's clock. */
  async #call(name: ScriptName, args: (string | number)[]): Promise<CallResult> {
    const link = this.#link;
    if (!link) throw new RedisUnavailableError(`member ${this.id} has no connection`);
    const clock = this.#settings.clock;
    const sentAt = clock.now();
    let reply: unknown;
    try {
      reply = await runScript(link.lease, name, this.#keys, args, this.id);
    } catch (error) {
      if (error instanceof UnderstudyError) throw error;
      throw new RedisUnavailableError(`${name} for member ${this.id} of group ${this.group}: ${describe(error)}`, {
        cause: error,
      });
    }
    const receivedAt = clock.now();
    return { view: parseView(name, reply), sentAt, midpoint: (sentAt + receivedAt) / 2 };
  }

  // ---- what the group says -------------------------------------------------------------

  /**
   * Applies a script's reply: the word of the server this member renews on. Replies on the
   * lease connection arrive in the order the server ran their scripts, so the latest one is the
   * server's latest word, whatever the version it carries (a server that lost writes, or a new
   * one after a failover, counts from where its copy stands: S6 is what makes its word safe).
   * Only a renewal's reply may deliver an activation (`confirmed`): it carried the member's
   * claim and knowledge, so the server could see that it lost state.
   */
  #applyView({ view, midpoint }: CallResult, source: 'join' | 'renewal' | 'other'): void {
    const confirmed = source === 'renewal';
    if (view.activeGoal > 0) this.#groupGoal = view.activeGoal;
    this.#quarantined = view.quarantineUntil > view.serverNow;
    this.#checkGroupHealth(view);
    // What the member sends back with its renewals: only what the scripts that check it said.
    if (source !== 'other') {
      this.#setVersion({ incarnation: view.incarnation, version: view.version });
      // Both scripts set the lease to now + A: the latest word of the server, on its clock.
      this.#serverLeaseEnd = view.role === 'gone' ? 0 : view.serverNow + view.activationInterval;
    }
    if (view.role === 'active' || view.role === 'releasing') {
      this.#epochFloor = Math.max(this.#epochFloor, view.epoch);
    }
    const pending = this.#pendingActivation;
    if (pending !== undefined && !(view.role === 'active' && view.epoch === pending)) {
      // Granted and then taken back before it was delivered: void for good.
      this.#pendingActivation = undefined;
      this.#retire(pending);
    }
    this.#server = { role: view.role, epoch: view.epoch, slot: view.slot, reason: view.reason, confirmed };
    this.#armWatch(view, midpoint);
    this.#converge();
  }

  /** Epochs up to `epoch` are never delivered again (the ledger: released, revoked or delivered). */
  #retire(epoch: number): void {
    if (epoch > this.#retiredFloor) this.#retiredFloor = epoch;
  }

  #checkGroupHealth(view: MemberView): void {
    const s = this.#settings;
    if (view.heartbeatInterval > 0 && view.heartbeatInterval !== s.heartbeatInterval && !this.#heartbeatWarned) {
      this.#heartbeatWarned = true;
      this.#log.warn(
        { group: view.heartbeatInterval, member: s.heartbeatInterval },
        'heartbeatInterval differs from the group; renewals keep this member’s own pace',
      );
    }
    if (this.#quarantined && view.quarantineUntil !== this.#quarantineReported) {
      this.#quarantineReported = view.quarantineUntil;
      this.#advise(
        'QUARANTINE',
        'the group lost its state or changed server: no activation for one activation interval',
        {
          remainingMs: view.quarantineUntil - view.serverNow,
        },
      );
    }
    if (view.slotsHeld > view.activeGoal && view.activeGoal > 0) {
      this.#advise('TOO_MANY_ACTIVE', `${view.slotsHeld} members are active, the goal is ${view.activeGoal}`, {
        active: view.slotsHeld,
        activeGoal: view.activeGoal,
      });
    }
    const expected = Math.min(view.activeGoal, view.liveMembers);
    const now = s.clock.now();
    if (view.slotsHeld < expected && !this.#quarantined) {
      this.#tooFewSince ??= now;
      if (!this.#tooFewReported && now - this.#tooFewSince > s.activationInterval) {
        this.#tooFewReported = true;
        this.#advise('TOO_FEW_ACTIVE', `${view.slotsHeld} of ${expected} expected members are active`, {
          active: view.slotsHeld,
          expected,
        });
      }
    } else {
      this.#tooFewSince = undefined;
      this.#tooFewReported = false;
    }
  }

  /**
   * The next in line arms timers at the slot holders' earliest lease deadline (takeover)
   * and at the moment that lease turns older than P (prepare); each timer just renews, and
   * the script decides with Redis's clock. Nothing polls.
   */
  #armWatch(view: MemberView, midpoint: number): void {
    clearTimeout(this.#watchTimer);
    clearTimeout(this.#prepareTimer);
    if (view.watchDeadline <= 0 || this.#held || this.#closing) return;
    const now = this.#settings.clock.now();
    const toLocal = (serverMs: number) => Math.max(0, midpoint + (serverMs - view.serverNow) - now);
    this.#watchTimer = setTimeout(() => void this.#renew(), toLocal(view.watchDeadline) + 1);
    this.#watchTimer.unref();
    const { preparationInterval: p, activationInterval: a } = this.#settings;
    if (p > 0 && view.role === 'standby') {
      this.#prepareTimer = setTimeout(() => void this.#renew(), toLocal(view.watchDeadline - a + p) + 1);
      this.#prepareTimer.unref();
    }
  }

  #onMessage = (message: string): void => {
    const announcement = parseAnnouncement(message);
    if (!announcement) return;
    if (this.#early) this.#early.push(announcement);
    else this.#applyAnnouncement(announcement);
  };

  /**
   * S7: announcements only speed things up, and may come from any server — a master frozen
   * past a failover and resumed, a replayed or forged message — so all they may do is trigger
   * a renewal, whose reply decides. The member renews when an announcement names it, or when it
   * is not the next one after what it last heard (a gap: it missed something). What it last
   * heard is reset by every reply, so a message from the future silences nothing for longer
   * than one heartbeat.
   */
  #applyAnnouncement(announcement: Announcement): void {
    if (this.#closing) return;
    const heard = this.#heard;
    const same = announcement.incarnation === heard.incarnation;
    if (same && announcement.version <= heard.version) return;
    const gap = !same || announcement.version !== heard.version + 1;
    this.#heard = { incarnation: announcement.incarnation, version: announcement.version };
    if (gap || announcement.changes.some((change) => change.member === this.id)) void this.#renew();
  }

  #onResync = (): void => {
    void this.#renew();
  };

  #setVersion(version: GroupVersion): void {
    this.#heard = version;
    const known = this.#known;
    if (version.incarnation === known.incarnation && version.version === known.version) return;
    this.#known = version;
    this.#emitSafe('version', version.version);
  }

  // ---- converging on the group's word --------------------------------------------------

  /** Brings the member's own state in line with its role in the group. */
  #converge(): void {
    if (!this.#started || this.#closing) return;
    const server = this.#server;
    const held = this.#held;
    switch (server.role) {
      case 'active':
        if (held) {
          if (held.epoch !== server.epoch) this.#demote('lease-lost', 'release');
          return;
        }
        // S6: an epoch delivered, released or revoked before is never delivered (again).
        if (server.epoch <= this.#retiredFloor) this.#releaseSettled(server.epoch, 'lease-lost');
        else if (this.#pendingActivation !== server.epoch) {
          if (server.confirmed) this.#scheduleActivation(server);
          else void this.#renew();
        }
        return;
      case 'releasing':
        if (held?.epoch === server.epoch) {
          this.#demote(server.reason as DeactivateReason, 'release');
          return;
        }
        // Told to release an epoch it does not hold: the one it holds is unknown to the group.
        if (held) this.#demote('lease-lost', 'release');
        this.#retire(server.epoch);
        this.#releaseSettled(server.epoch, server.reason);
        return;
      default:
        if (held) {
          this.#advise('LEASE_LOST', 'the group no longer counts this member as active; deactivating', {
            epoch: held.epoch,
          });
          this.#demote(this.#quarantined ? 'quarantine' : 'lease-lost', 'none');
        }
        this.#pendingActivation = undefined;
        if (server.role === 'preparing' && !this.#prepared) this.#schedulePrepare('lease-aging');
        if (server.role === 'standby' && this.#state === 'preparing' && this.#actions.idle) {
          this.#prepared = false;
          this.#transition('standby');
        }
    }
  }

  #schedulePrepare(reason: PrepareInfo['reason']): void {
    this.#prepared = true;
    if (this.#state === 'standby') this.#transition('preparing');
    const info: PrepareInfo = { reason };
    this.#emitSafe('prepare', info);
    void this.#actions.enqueue(async () => {
      const outcome = await runHandler(this.#options.onPrepare, info, this.#settings.activationInterval);
      this.#handlerFailed('prepare', outcome);
    });
  }

  #scheduleActivation(server: ServerRoleView): void {
    const epoch = server.epoch;
    this.#pendingActivation = epoch;
    if (this.#settings.preparationInterval > 0 && !this.#prepared) this.#schedulePrepare('activation');
    void this.#actions.enqueue(async () => {
      if (this.#pendingActivation !== epoch) return;
      // Still pending while waiting for a replica: a reply meanwhile must not queue it twice.
      if (this.#settings.durability === 'replicated' && !(await this.#replicated())) {
        this.#pendingActivation = undefined;
        void this.#renew(); // its reply converges again, and the activation is retried
        return;
      }
      this.#pendingActivation = undefined;
      const now = this.#server;
      if (this.#closing || this.#held || now.role !== 'active' || now.epoch !== epoch) return;
      if (epoch <= this.#retiredFloor) return;
      // S4: check the lease again right before delivering activate.
      if (!(this.#settings.clock.now() < this.#leaseDeadline)) {
        void this.#renew();
        return;
      }
      const info: ActivateInfo = { epoch, slot: now.slot, reason: now.reason as ActivateReason };
      this.#held = { epoch, slot: now.slot, reason: info.reason };
      this.#prepared = false;
      this.#transition('active');
      this.#armDeadline();
      this.#log.info(info, 'activate');
      this.#emitSafe('activate', info);
      const outcome = await runHandler(this.#options.onActivate, info, this.#settings.activationInterval);
      if (!outcome.ok) {
        this.#handlerFailed('activate', outcome);
        this.#weight = 0;
        this.#disabling = true;
        this.#advise('DISABLED', 'the activate handler failed: weight set to 0 until setWeight() is called', {
          epoch,
        });
        if (this.#held?.epoch === epoch) this.#demote('disabled', 'disable');
        else void this.#disable(epoch);
      }
    });
  }

  /**
   * durability 'replicated': a renewal (a write on this connection, after the grant in Redis's
   * replication stream) followed by WAIT 1: once a replica acknowledged it, it has the grant.
   */
  async #replicated(): Promise<boolean> {
    const link = this.#link;
    if (!link) return false;
    await this.#renewOnce();
    const timeout = Math.max(1, Math.floor(this.#settings.heartbeatInterval / 2));
    try {
      const replicas = Number(await link.lease.call('WAIT', 1, timeout));
      if (replicas >= 1) return true;
      this.#log.warn({ timeoutMs: timeout }, 'no replica acknowledged the grant yet; activation waits');
    } catch (error) {
      this.#log.warn({ error: describe(error) }, 'WAIT failed; activation waits');
    }
    return false;
  }

  /**
   * Stops believing it is active (synchronously), then delivers `deactivate`, and only
   * after the handler settled gives the slot back: demote before promote.
   */
  #demote(reason: DeactivateReason, afterwards: 'release' | 'disable' | 'none'): void {
    const held = this.#held;
    if (!held) return;
    this.#held = undefined;
    clearTimeout(this.#deadlineTimer);
    this.#retire(held.epoch);
    this.#transition(this.#closing ? 'leaving' : 'standby');
    const info: DeactivateInfo = { epoch: held.epoch, reason };
    this.#log.info(info, 'deactivate');
    this.#emitSafe('deactivate', info);
    this.#settling.add(held.epoch);
    void this.#actions.enqueue(async () => {
      const outcome = await runHandler(this.#options.onDeactivate, info, this.#settings.activationInterval);
      this.#settling.delete(held.epoch);
      this.#handlerFailed('deactivate', outcome);
      if (afterwards === 'release') await this.#release(held.epoch, reason);
      if (afterwards === 'disable') await this.#disable(held.epoch);
    });
  }

  /** Gives back a slot the group still lists, unless its deactivate handler is still running. */
  #releaseSettled(epoch: number, reason: string): void {
    if (!this.#settling.has(epoch)) void this.#release(epoch, reason);
  }

  async #release(epoch: number, reason: string): Promise<void> {
    if (this.#releasing.has(epoch) || this.#closing) return;
    this.#releasing.add(epoch);
    try {
      const disabling = this.#disabling;
      const p = this.#settings.preparationInterval;
      const result = disabling
        ? await this.#call('disable', [this.#keys.events, this.id, String(epoch), p, this.#nonce])
        : await this.#call('release', [this.#keys.events, this.id, String(epoch), reason, p, this.#nonce]);
      if (disabling) this.#disabling = false;
      if (!this.#closing) this.#applyView(result, 'other');
    } catch (error) {
      if (error instanceof MemberExistsError) this.#expelled(error);
      // The next renewal shows the slot still held, and converging releases it again.
      this.#log.warn({ epoch, error: describe(error) }, 'could not release the slot yet');
    } finally {
      this.#releasing.delete(epoch);
    }
  }

  #disable(epoch: number): Promise<void> {
    return this.#release(epoch, 'disabled');
  }

  #handlerFailed(action: 'prepare' | 'activate' | 'deactivate', outcome: Outcome): void {
    if (outcome.ok) return;
    if (outcome.timedOut) {
      this.#advise('HANDLER_TIMEOUT', `the ${action} handler did not settle within the activation interval`, {
        action,
      });
    }
    this.#log.error({ action, error: describe(outcome.error) }, `${action} handler failed`);
    const error = new HandlerError(action, `${action} handler failed: ${describe(outcome.error)}`, {
      cause: outcome.error,
    });
    if (this.listenerCount('error') > 0) this.#emitSafe('error', error);
  }

  // ---- leaving -------------------------------------------------------------------------

  #onAbort = (): void => {
    void this.leave();
  };

  async #leave(): Promise<void> {
    if (this.#state === 'left') return;
    this.#closing = true;
    this.#pendingActivation = undefined;
    clearTimeout(this.#watchTimer);
    clearTimeout(this.#prepareTimer);
    if (this.#held) this.#demote('leave', 'none');
    else if (this.#state !== 'leaving') this.#transition('leaving');
    // Renewals go on while the deactivate handler runs: the slot must not lapse under it.
    await this.#actions.drained();
    // A renewal in flight was sent before the leave script, on the same connection, so Redis
    // runs it first; none is sent after, so none can add the member back.
    this.#renewalsStopped = true;
    clearTimeout(this.#renewTimer);
    try {
      await this.#call('leave', [this.#keys.events, this.id, this.#nonce]);
      this.#log.info('left');
    } catch (error) {
      this.#log.warn({ error: describe(error) }, 'could not announce the leave; the lease lapses on its own');
    }
    await this.#close();
    this.#transition('left');
  }

  /** Releases timers, the subscription and the connections. */
  async #close(): Promise<void> {
    this.#closing = true;
    this.#renewalsStopped = true;
    for (const timer of [this.#renewTimer, this.#deadlineTimer, this.#watchTimer, this.#prepareTimer]) {
      clearTimeout(timer);
    }
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    const link = this.#link;
    this.#link = undefined;
    if (link) {
      link.subscriber.unsubscribe(this.#keys.events, this.#onMessage, this.#onResync);
      link.release();
    }
    lagMonitor.release();
  }

  // ---- plumbing ------------------------------------------------------------------------

  #transition(to: MemberState): void {
    const from = this.#state;
    if (from === to) return;
    if (!TRANSITIONS[from].includes(to)) {
      throw new Error(`understudy bug: member ${this.id} cannot go from ${from} to ${to}`);
    }
    this.#state = to;
    this.#log.debug({ from, to }, 'state');
    this.#emitSafe('state', { from, to });
  }

  #advise(code: AdvisoryCode, message: string, details: Record<string, unknown> = {}): void {
    this.#log.warn({ code, ...details }, message);
    this.#emitSafe('advisory', { code, message, group: this.group, member: this.id, ...details });
  }

  /** Listeners must not break the member: a throwing listener is logged and reported. */
  #emitSafe<E extends keyof MemberEvents>(event: E, ...args: MemberEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: MemberEvents[E]) => boolean)(event, ...args);
    } catch (error) {
      this.#log.error({ event, error: describe(error) }, 'an event listener threw');
      if (event !== 'error' && this.listenerCount('error') > 0) {
        this.#emitSafe('error', error instanceof Error ? error : new Error(String(error)));
      }
    }
  }
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The advisory for a failed renewal: a refusal by ACL, or state someone else wrote, is not an outage. */
function renewalFailure(error: unknown): AdvisoryCode {
  if (error instanceof PermissionError) return 'NO_PERMISSION';
  if (error instanceof CorruptStateError) return 'CORRUPT_STATE';
  return 'REDIS_UNAVAILABLE';
}

/** Joins a group; resolves once the member is registered (activation, if any, follows). */
export async function joinGroup(options: JoinOptions): Promise<Member> {
  const member = new Member(options);
  await member.start();
  return member;
}
