import { pino } from 'pino';
import type { RedisSource } from '../connections/settings.js';
import type { Heard } from '../connections/subscriber.js';
import { LeftError, MemberExistsError, ParamMismatchError } from '../errors.js';
import { describe } from '../failures.js';
import { validateWeight } from '../options.js';
import { claimRole } from '../role.js';
import type { Announcement } from '../scripts.js';
import { ActionQueue, type Outcome, runHandler } from './actions.js';
import { type Call, joinFailure, MemberCalls } from './calls.js';
import { lagMonitor } from './clock.js';
import { decide, type Step } from './decide.js';
import { MemberEmitter } from './emitter.js';
import { type FeedHost, MemberFeed } from './feed.js';
import { checkSetup, GroupHealth } from './health.js';
import { type LeaseHost, LeaseKeeper } from './lease.js';
import { EpochLedger } from './ledger.js';
import { type MemberSettings, memberSettings } from './settings.js';
import type {
  ActivateInfo,
  ActivateReason,
  DeactivateInfo,
  DeactivateReason,
  JoinOptions,
  PrepareInfo,
} from './types.js';
import { GroupView, type ReplySource } from './view.js';

/**
 * Where the member object is in its life: joining (until the first actions may be delivered),
 * running, leaving (no new activations or releases; renewals go on while its deactivate handler
 * runs), stopped (no renewal is sent any more).
 */
type Phase = 'joining' | 'running' | 'leaving' | 'stopped';

/**
 * A member of a fault-tolerance group: wires its lease keeper, its view of the group, the
 * decision table and its epoch ledger, and delivers the actions they decide. The state machine
 * is described in docs/member-state-machine.md; every change of `state` goes through `transition` (emitter.ts).
 */
export class Member extends MemberEmitter {
  readonly #s: MemberSettings;
  readonly #options: JoinOptions;
  readonly #actions = new ActionQueue();
  readonly #ledger = new EpochLedger();
  readonly #view: GroupView;
  readonly #lease: LeaseKeeper;
  readonly #health: GroupHealth;
  readonly #calls: MemberCalls;
  #feed: MemberFeed | undefined;
  #phase: Phase = 'joining';
  #weight: number;
  /** The activate handler failed: the weight stays 0 until the group has it (the disable script ran). */
  #disabling = false;
  /** DESIGN §7: this process is a group member while this member is in its group. */
  #releaseRole: (() => void) | undefined;
  /** Announcements heard while joining, applied once joinGroup() resolved. */
  #early: Announcement[] = [];

  /** @internal Use `joinGroup()`. */
  constructor(options: JoinOptions) {
    const s = memberSettings(options);
    const bindings = { component: 'understudy-member', group: s.group, member: s.id };
    super(s.group, s.id, options.logger?.child(bindings) ?? pino({ enabled: false }));
    this.#s = s;
    this.#options = options;
    this.#weight = this.#s.weight;
    this.#view = new GroupView(this.#s.activeGoal);
    this.#calls = new MemberCalls(this.#s, this.log);
    this.#lease = new LeaseKeeper(this.#s, this.#leaseHost());
    this.#health = new GroupHealth(this.#s, this.advise, this.log);
  }

  /** Fencing epoch of the current activation, or undefined when not active. */
  get epoch(): number | undefined {
    return this.state === 'active' ? this.#ledger.held?.epoch : undefined;
  }

  get weight(): number {
    return this.#weight;
  }

  /** The id of the last feed message committed by this member's slot (DESIGN §10); undefined while it holds none. */
  get committed(): string | undefined {
    return this.#feed?.committed;
  }

  /** Joining or running: not leaving, not stopped. */
  get #live(): boolean {
    return this.#phase === 'joining' || this.#phase === 'running';
  }

  /** Synchronous: active, and the lease deadline (S4) has not passed. Guard critical sections with it. */
  isActive(): boolean {
    return this.state === 'active' && this.#ledger.held !== undefined && this.#lease.valid();
  }

  /** Changes this member's rank at run time (1–65535). */
  async setWeight(weight: number): Promise<void> {
    validateWeight(weight);
    if (!this.#live) throw new LeftError(`member ${this.id} has left group ${this.group}`);
    this.#disabling = false;
    // The member is the authority on its weight: renewals sent from now on carry the new one, so
    // a server that lost the change (a failover to a lagging replica) is told again. A call that
    // fails takes it back: the renewals then carry the old one.
    const previous = this.#weight;
    this.#weight = weight;
    let reply: Call;
    try {
      reply = await this.#calls.setWeight(weight);
    } catch (error) {
      if (this.#weight === weight) this.#weight = previous;
      if (error instanceof MemberExistsError) this.expelled(error);
      throw error;
    }
    this.#applyReply(reply, 'other');
  }

  /** @internal Connects, subscribes, joins; called once by `joinGroup`. */
  async start(): Promise<void> {
    const { signal } = this.#options;
    signal?.throwIfAborted();
    this.#releaseRole = claimRole('group', this.#s.group);
    lagMonitor.acquire();
    try {
      await this.#calls.connect(this.#options.redis as RedisSource, this.#onMessage, this.#onResync, signal);
      // Reading starts before the join: every message published after its reply is read.
      this.#feed = await MemberFeed.open(this.#options, this.#s, this.#feedHost());
      signal?.throwIfAborted();
      const joined = await this.#calls.join(this.#weight);
      this.#lease.joined(joined);
      this.#applyReply(joined, 'join');
    } catch (error) {
      await this.#close();
      this.transition('leaving');
      this.transition('left');
      if (signal?.aborted) throw signal.reason;
      throw joinFailure(error, this.#options.redis as RedisSource, this.#s);
    }
    // Aborted while the join script ran: the member is in the group, so it leaves it again.
    if (signal?.aborted) {
      await this.leave();
      signal.throwIfAborted();
    }
    this.log.info({ weight: this.#weight, version: this.#view.version }, 'joined');
    void checkSetup(this.#calls.lease, this.#s, this.advise, this.log);
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#lease.start();
    // Deliver the first actions after joinGroup() resolved, so listeners added then see them.
    setImmediate(() => {
      if (this.#phase !== 'joining') return;
      this.#phase = 'running';
      this.#feed?.begin();
      for (const announcement of this.#early.splice(0)) this.#hear(announcement);
      this.#converge();
    });
  }

  #feedHost(): FeedHost {
    return {
      enqueue: (step) => this.#actions.enqueue(step),
      held: () => this.#ledger.held,
      isActive: () => this.isActive(),
      commit: (slot, epoch, id) => this.#calls.commit(slot, epoch, id),
      failed: (outcome, held) =>
        held ? this.#disable('message', held.epoch, outcome) : this.handlerFailed('message', outcome),
      error: (error) => this.reportError(error),
      advise: this.advise,
      log: this.log,
    };
  }

  #leaseHost(): LeaseHost {
    return {
      send: () => this.#calls.renew(this.#weight, this.#ledger.held, this.#view),
      renewed: (reply) => this.#applyReply(reply, 'renewal'),
      refused: (error) => {
        if (!(error instanceof ParamMismatchError || error instanceof MemberExistsError)) return false;
        this.expelled(error);
        return true;
      },
      accepting: () => this.#live,
      lapsed: () => this.#leaseLost('no renewal succeeded before the lease deadline; deactivating', 'release'),
      resetConnection: () => this.#calls.resetLease(),
      emit: (event) => this.emitSafe('renewal', event),
      advise: this.advise,
      log: this.log,
    };
  }

  /**
   * Takes a script's reply as the server's latest word (see GroupView.apply). Only a renewal's
   * reply may deliver an activation: it carried the member's claim and knowledge, so the server
   * could see that it lost state.
   */
  #applyReply(reply: Call, source: ReplySource): void {
    const { view } = reply;
    const changed = this.#view.apply(view, source);
    this.#health.check(view, this.#view.quarantined);
    if (changed) this.emitSafe('version', view.version);
    this.#lease.watch(view, reply.midpoint, this.#live && this.#ledger.held === undefined);
    this.#converge();
  }

  /** An announcement (parsed once per process): heard once running (those heard while joining wait), only renews (S7). */
  #onMessage = (message: Heard): void => {
    const { announcement } = message;
    if (announcement && this.#phase === 'joining') this.#early.push(announcement);
    else if (announcement) this.#hear(announcement);
  };

  #hear(announcement: Announcement): void {
    if (this.#phase === 'running' && this.#view.hear(announcement, this.id)) void this.#lease.renew();
  }

  #onResync = (): void => void this.#lease.renew();

  /** Brings the member's own state in line with its role in the group (the decision table). */
  #converge(): void {
    if (this.#phase !== 'running') return;
    const ledger = this.#ledger;
    const steps = decide({
      server: this.#view.server,
      held: ledger.held?.epoch,
      floor: ledger.floor,
      pending: ledger.pending,
      settling: (epoch) => ledger.isSettling(epoch),
      state: this.state,
      quarantined: this.#view.quarantined,
      idle: this.#actions.idle,
    });
    for (const step of steps) this.#carryOut(step);
  }

  #carryOut(step: Step): void {
    if (step.do === 'revoke') this.#ledger.revoke(step.epoch);
    else if (step.do === 'retire') this.#ledger.retire(step.epoch);
    else if (step.do === 'activate') this.#scheduleActivation(step.epoch);
    else if (step.do === 'renew') void this.#lease.renew();
    else if (step.do === 'release') void this.#release(step.epoch, step.reason);
    else if (step.do === 'prepare') this.#schedulePrepare('lease-aging');
    else if (step.do === 'withdraw-prepare') this.transition('standby');
    else if (!step.advise) this.#demote(step.reason, step.release ? 'release' : 'none');
    else this.#leaseLost('the group no longer counts this member as active; deactivating', 'none', step.reason);
  }

  /** Advisory LEASE_LOST, then deactivate. */
  #leaseLost(message: string, afterwards: 'release' | 'none', reason: DeactivateReason = 'lease-lost'): void {
    const held = this.#ledger.held;
    if (!held) return;
    this.advise('LEASE_LOST', message, { epoch: held.epoch });
    this.#demote(reason, afterwards);
  }

  #schedulePrepare(reason: PrepareInfo['reason']): void {
    if (this.state === 'standby') this.transition('preparing');
    const info: PrepareInfo = { reason };
    this.emitSafe('prepare', info);
    void this.#actions.enqueue(async () => {
      const outcome = await runHandler(this.#options.onPrepare, info, this.#s.activationInterval);
      this.handlerFailed('prepare', outcome);
    });
  }

  #scheduleActivation(epoch: number): void {
    this.#ledger.pend(epoch);
    if (this.#s.preparationInterval > 0 && this.state !== 'preparing') this.#schedulePrepare('activation');
    void this.#actions.enqueue(async () => {
      if (this.#ledger.pending !== epoch) return;
      // Still pending while waiting for a replica: a reply meanwhile must not queue it twice.
      const replicated =
        this.#s.durability !== 'replicated' || (await this.#calls.replicated(() => this.#lease.renew()));
      this.#ledger.unpend(epoch);
      if (!replicated) {
        void this.#lease.renew(); // its reply converges again, and the activation is retried
        return;
      }
      const now = this.#view.server;
      if (this.#phase !== 'running' || now.role !== 'active' || now.epoch !== epoch) return;
      if (!this.#ledger.deliverable(epoch)) return;
      // S4: check the lease again right before delivering activate.
      if (!this.#lease.valid()) {
        void this.#lease.renew();
        return;
      }
      const held = this.#ledger.hold(epoch, now.slot, now.reason as ActivateReason);
      const info: ActivateInfo = { epoch, slot: held.slot, reason: held.reason, signal: held.signal };
      this.transition('active');
      this.#lease.arm();
      this.log.info({ epoch, slot: held.slot, reason: held.reason }, 'activate');
      this.emitSafe('activate', info);
      const outcome = await runHandler(this.#options.onActivate, info, this.#s.activationInterval);
      if (!outcome.ok) this.#disable('activate', epoch, outcome);
      else if (this.#feed && this.#ledger.held === held) await this.#feed.activated(held);
    });
  }

  /**
   * A handler failed while the member acted for its slot (onActivate, or onMessage while
   * active): weight 0, deactivate (`disabled`), and the disable script gives the slot back; its
   * next holder starts again after the slot's last commit.
   */
  #disable(action: 'activate' | 'message', epoch: number, outcome: Outcome): void {
    this.handlerFailed(action, outcome);
    this.#weight = 0;
    this.#disabling = true;
    this.advise('DISABLED', `the ${action} handler failed: weight set to 0 until setWeight() is called`, { epoch });
    if (this.#ledger.held?.epoch === epoch) this.#demote('disabled', 'release');
    else void this.#release(epoch, 'disabled');
  }

  /**
   * Stops believing it is active (synchronously: the activation's signal aborts), then delivers
   * `deactivate`, and only after the handler settled gives the slot back: demote before promote.
   */
  #demote(reason: DeactivateReason, afterwards: 'release' | 'none'): void {
    const held = this.#ledger.drop(reason);
    if (!held) return;
    this.#lease.disarm();
    this.transition(this.#phase === 'running' ? 'standby' : 'leaving');
    const info: DeactivateInfo = { epoch: held.epoch, reason };
    this.log.info(info, 'deactivate');
    this.emitSafe('deactivate', info);
    void this.#actions.enqueue(async () => {
      const outcome = await runHandler(this.#options.onDeactivate, info, this.#s.activationInterval);
      this.#ledger.settled(held.epoch);
      this.handlerFailed('deactivate', outcome);
      if (afterwards === 'release') await this.#release(held.epoch, reason);
    });
  }

  /** Gives a slot back: with the disable script (weight 0 in the same step) after a failed activate handler. */
  async #release(epoch: number, reason: string): Promise<void> {
    if (this.#phase !== 'running' || !this.#ledger.beginRelease(epoch)) return;
    try {
      const disabling = this.#disabling;
      const reply = await this.#calls.release(epoch, reason, disabling);
      if (disabling) this.#disabling = false;
      if (this.#phase === 'running') this.#applyReply(reply, 'other');
    } catch (error) {
      if (error instanceof MemberExistsError) this.expelled(error);
      // The next renewal shows the slot still held, and converging releases it again.
      this.log.warn({ epoch, error: describe(error) }, 'could not release the slot yet');
    } finally {
      this.#ledger.endRelease(epoch);
    }
  }

  #onAbort = (): void => void this.leave();

  /** Deactivates first if active (reason `leave`), then runs the leave script, which hands the slot over at once. */
  protected async leaveOnce(): Promise<void> {
    if (this.state === 'left') return;
    this.#phase = 'leaving';
    this.#ledger.unpend();
    this.#lease.unwatch();
    if (this.#ledger.held) this.#demote('leave', 'none');
    else if (this.state !== 'leaving') this.transition('leaving');
    // Renewals go on while the deactivate handler runs: the slot must not lapse under it.
    await this.#feed?.stop();
    await this.#actions.drained();
    // A renewal in flight was sent before the leave script, on the same connection, so Redis
    // runs it first; none is sent after, so none can add the member back.
    this.#phase = 'stopped';
    this.#lease.stop();
    try {
      await this.#calls.leave();
      this.log.info('left');
    } catch (error) {
      this.log.warn({ error: describe(error) }, 'could not announce the leave; the lease lapses on its own');
    }
    await this.#close();
    this.transition('left');
  }

  /** Releases timers, the subscription and the connections. */
  async #close(): Promise<void> {
    this.#phase = 'stopped';
    this.#lease.stop();
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    await this.#feed?.stop();
    this.#calls.close();
    this.#releaseRole?.();
    lagMonitor.release();
  }
}
