import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { pino } from 'pino';
import { acquireLink, type Link } from '../connections/pool.js';
import type { RedisSource } from '../connections/settings.js';
import type { Heard } from '../connections/subscriber.js';
import { LeftError, MemberExistsError, ParamMismatchError, RedisUnavailableError, UnderstudyError } from '../errors.js';
import { describe } from '../failures.js';
import { commandTimeoutFor, validateWeight } from '../options.js';
import {
  chooseSlot,
  joinStamp,
  proposeEpoch,
  quorumDeadline,
  quorumSize,
  releaseAsked,
  type SlotGrant,
  tallyGrants,
} from '../quorum.js';
import { claimRole } from '../role.js';
import type { ScriptReply } from '../script-specs.js';
import { type Announcement, scripts } from '../scripts.js';
import { ActionQueue, runHandler } from './actions.js';
import type { Call } from './calls.js';
import { lagMonitor } from './clock.js';
import { decide, type ServerWord, type Step } from './decide.js';
import { MemberEmitter } from './emitter.js';
import { LeaseKeeper } from './lease.js';
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
import { GroupView } from './view.js';

type Phase = 'joining' | 'running' | 'leaving' | 'stopped';

/** A quorum_renew reply, timed on the member's clock. */
type QuorumCall = Call & Omit<ScriptReply<'quorum_renew'>, 'view'>;

/** One of the K deployments, as this member sees it. */
interface Server {
  readonly index: number;
  readonly source: RedisSource;
  link: Link | undefined;
  keeper: LeaseKeeper;
  view: GroupView;
  /** Its latest reply; its word counts while the lease it gave is valid (keeper.valid()). */
  reply: QuorumCall | undefined;
  /** Its latest renewal succeeded. */
  fresh: boolean;
  readonly onMessage: (message: Heard) => void;
  readonly onResync: () => void;
  /** The grant this server showed for the held (or pending) activation: claimed in every renewal (S6). */
  claimed: SlotGrant | undefined;
  /** Its latest renewal was refused as the member's own fault (ParamMismatchError, MemberExistsError). */
  refusal: UnderstudyError | undefined;
}

/**
 * A member of a group in quorum mode (DESIGN §9): one lease keeper per deployment, all renewing
 * in parallel, and one decision over their replies. It holds a slot only while Q servers show
 * it the same slot and epoch, acts until the Q-th latest of its per-server deadlines, proposes
 * an epoch above every floor it saw when Q servers rank it among the best with a common free
 * slot, releases partial grants on every server at once, and deactivates when Q servers ask
 * for its slot back. The decisions themselves are quorum.ts's and decide.ts's (pure).
 */
export class QuorumMember extends MemberEmitter {
  readonly #s: MemberSettings;
  readonly #options: JoinOptions;
  readonly #servers: Server[];
  readonly #quorum: number;
  readonly #actions = new ActionQueue();
  readonly #ledger = new EpochLedger();
  readonly #nonce = randomBytes(6).toString('hex');
  readonly #host = hostname();
  #phase: Phase = 'joining';
  #weight: number;
  #stamp = 0;
  /** The highest epoch seen on any server: every proposal is above it. */
  #seen = 0;
  #proposing: SlotGrant | undefined;
  /** After a proposal that did not gather Q acceptances: none before this (member clock), with jitter, so racing standbys part. */
  #proposeAfter = 0;
  #word: ServerWord = { role: 'standby', epoch: 0, slot: -1, reason: '', confirmed: false };
  #lost = false;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #releaseRole: (() => void) | undefined;

  /** @internal Use `joinGroup()`. */
  constructor(options: JoinOptions & { redis: readonly RedisSource[] }) {
    const s = memberSettings(options);
    const bindings = { component: 'understudy-member', group: s.group, member: s.id, quorum: true };
    super(s.group, s.id, options.logger?.child(bindings) ?? pino({ enabled: false }));
    this.#s = s;
    this.#options = options;
    this.#weight = s.weight;
    this.#quorum = quorumSize(options.redis.length);
    this.#servers = options.redis.map((source, index) => {
      const server: Server = {
        index,
        source,
        link: undefined,
        view: new GroupView(s.activeGoal),
        reply: undefined,
        fresh: false,
        claimed: undefined,
        refusal: undefined,
        keeper: undefined as unknown as LeaseKeeper,
        onMessage: (message) => this.#heard(server, message),
        onResync: () => void server.keeper.renew(),
      };
      server.keeper = new LeaseKeeper(s, {
        send: () => this.#send(server),
        renewed: (reply) => this.#replied(server, reply as QuorumCall),
        refused: (error) => this.#refused(server, error),
        accepting: () => {
          // S4, as the keeper checks one server's lease: a reply handled after the quorum's
          // deadline (its timer not yet run) finds the member deactivated first.
          this.#checkDeadline();
          return this.#live;
        },
        lapsed: () => undefined, // the member's deadline is the quorum's (#armDeadline), not one server's
        resetConnection: () => server.link?.resetLease(),
        // Every server's renewal, with the member's deadline: the quorum's, not that server's.
        emit: (event) => this.emitSafe('renewal', { ...event, leaseDeadline: this.#leaseDeadline() }),
        advise: () => undefined, // one server of K down is not an outage: QUORUM_LOST says when it is
        log: this.log,
      });
      return server;
    });
  }

  get epoch(): number | undefined {
    return this.state === 'active' ? this.#ledger.held?.epoch : undefined;
  }

  get weight(): number {
    return this.#weight;
  }

  /** The group feed is not available in quorum mode yet. */
  get committed(): string | undefined {
    return undefined;
  }

  get #live(): boolean {
    return this.#phase === 'joining' || this.#phase === 'running';
  }

  /** Active, and the Q-th latest per-server deadline has not passed (S4 over K servers). */
  isActive(): boolean {
    return this.state === 'active' && this.#ledger.held !== undefined && this.#s.clock.now() < this.#deadline();
  }

  async setWeight(weight: number): Promise<void> {
    validateWeight(weight);
    if (!this.#live) throw new LeftError(`member ${this.id} has left group ${this.group}`);
    // Renewals carry the weight: every server takes it from the next one.
    this.#weight = weight;
    await this.#renewAll();
  }

  /** @internal Connects to the K deployments and joins on all of them; joined once Q accepted. */
  async start(): Promise<void> {
    const { signal } = this.#options;
    signal?.throwIfAborted();
    this.#releaseRole = claimRole('group', this.#s.group);
    lagMonitor.acquire();
    try {
      await this.#join();
    } catch (error) {
      await this.#close();
      this.transition('leaving');
      this.transition('left');
      if (signal?.aborted) throw signal.reason;
      throw error;
    }
    if (signal?.aborted) {
      await this.leave();
      signal.throwIfAborted();
    }
    this.log.info({ stamp: this.#stamp, servers: this.#servers.length }, 'joined');
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    for (const server of this.#servers) server.keeper.start();
    setImmediate(() => {
      if (this.#phase !== 'joining') return;
      this.#phase = 'running';
      this.#converge();
    });
  }

  /** Joins on every server at once: resolves once Q accepted (the join stamp is theirs), rejects when Q cannot. */
  async #join(): Promise<void> {
    const arrivals: number[] = [];
    const errors: unknown[] = [];
    await new Promise<void>((resolve) => {
      let settled = 0;
      for (const server of this.#servers) {
        this.#joinOn(server).then(
          (reply) => {
            arrivals.push(reply.view.serverNow);
            server.keeper.joined(reply);
            this.#replied(server, reply);
            settled += 1;
            if (arrivals.length === this.#quorum || settled === this.#servers.length) resolve();
          },
          (error) => {
            errors.push(error);
            settled += 1;
            if (settled === this.#servers.length) resolve();
          },
        );
      }
    });
    const fatal = errors.find((e) => e instanceof ParamMismatchError || e instanceof MemberExistsError);
    if (fatal) throw fatal;
    const stamp = joinStamp(arrivals, this.#quorum);
    if (stamp === undefined) {
      const first = errors[0];
      throw first instanceof Error
        ? first
        : new RedisUnavailableError(`fewer than ${this.#quorum} deployments accepted the join`);
    }
    this.#stamp = stamp;
  }

  /**
   * The join on one server; a reply that timed out (a busy process, a slow server) is retried
   * until one activation interval has passed: the nonce makes a join that did run idempotent.
   */
  async #joinOn(server: Server): Promise<QuorumCall> {
    const s = this.#s;
    const giveUpAt = s.clock.now() + s.activationInterval;
    for (;;) {
      try {
        return await this.#send(server);
      } catch (error) {
        if (!(error instanceof UnderstudyError && error.retryable) || s.clock.now() >= giveUpAt) throw error;
        await sleep(Math.min(50, s.heartbeatInterval));
      }
    }
  }

  /** One renewal on one server: what this member holds there, and its proposal if one is under way. */
  async #send(server: Server): Promise<QuorumCall> {
    const s = this.#s;
    if (!server.link) {
      server.link = await acquireLink(server.source, commandTimeoutFor(s.heartbeatInterval), s.activationInterval);
      await server.link.subscriber.subscribe(s.keys.events, server.onMessage, server.onResync, s.activationInterval);
    }
    const claim = server.claimed;
    // A grant a majority already gave is proposed to the servers that lack it (one that was
    // quarantined, slow or cut off when it was proposed): with it on more than Q servers, losing
    // one of them costs nothing. They accept it under the same rules as any proposal.
    const proposal = claim ? undefined : (this.#heldGrant() ?? this.#proposing);
    const sentAt = s.clock.now();
    const reply = await scripts.quorum_renew(server.link.lease, s.keys, {
      channel: s.keys.events,
      memberId: s.id,
      weight: this.#weight,
      activeGoal: server.view.activeGoal,
      activationInterval: s.activationInterval,
      heartbeatInterval: s.heartbeatInterval,
      // Each server tells the next in line to prepare by its own clock (update_prepare in lib.lua).
      preparationInterval: s.preparationInterval,
      host: this.#host,
      pid: process.pid,
      nonce: this.#nonce,
      stamp: this.#stamp,
      // Renewals carry the epoch the member holds: every server's floor rises to it (DESIGN §9).
      knownFloor: this.#heldGrant()?.epoch ?? 0,
      claimedEpoch: claim?.epoch ?? 0,
      claimedSlot: claim?.slot ?? -1,
      proposedEpoch: proposal?.epoch ?? 0,
      proposedSlot: proposal?.slot ?? -1,
    });
    const receivedAt = s.clock.now();
    return { ...reply, sentAt, midpoint: (sentAt + receivedAt) / 2 };
  }

  /** The grant the member holds, or that a majority gave it and waits to be delivered. */
  #heldGrant(): SlotGrant | undefined {
    const held = this.#ledger.held;
    if (held) return { slot: held.slot, epoch: held.epoch };
    const word = this.#word;
    return word.role === 'active' && this.#ledger.pending === word.epoch
      ? { slot: word.slot, epoch: word.epoch }
      : undefined;
  }

  /**
   * An announcement renews on its server when it names this member or shows a gap (S7), and
   * also, while this member holds nothing, when it frees a slot: in a quorum group no script
   * hands a freed slot on (a slot goes only to a member's own proposal), so the announcement
   * names nobody who could take it, and the next in line would otherwise wait for its heartbeat.
   * The next in line takes the freed slot as free at once (`#expectFreed`), and its proposal
   * goes out with the renewals on the first announcement, not after Q of them.
   */
  #heard(server: Server, message: Heard): void {
    const { announcement } = message;
    if (!announcement || this.#phase !== 'running') return;
    const named = server.view.hear(announcement, this.id);
    const freed = this.#heldGrant() === undefined ? freedSlots(announcement) : undefined;
    if (freed && freed.length > 0 && this.#expectFreed(server, freed)) return;
    if (named || freed) void server.keeper.renew();
  }

  /**
   * The next in line (`server`'s latest reply armed a takeover watch) reads the freed slots as
   * free, and itself as among the best, on every server whose latest reply armed one: a leave or
   * a release goes to all servers at once, so the others' announcements are on their way, and
   * waiting for the Q-th of them cost up to a round trip more (the proposal then also queued
   * behind the renewal the first one sent). Only what the proposal is based on changes: each
   * server decides it by its own state (quorum_renew.lua), and one that has not freed the slot
   * refuses, leaving a partial grant at most, released as any other. True once a proposal went
   * out: its renewals reach every server, this one included.
   */
  #expectFreed(server: Server, freed: readonly number[]): boolean {
    const watching = (s: Server) => s.fresh && s.reply !== undefined && s.reply.view.watchDeadline > 0;
    if (this.#proposing || !watching(server)) return false;
    for (const s of this.#servers.filter(watching)) {
      const r = s.reply as QuorumCall;
      s.reply = { ...r, eligible: true, free: [...new Set([...r.free, ...freed])] };
    }
    this.#converge();
    return this.#proposing !== undefined;
  }

  /**
   * A server that refuses the member (other parameters or the other mode, another member object
   * with its id) holds it no more, as if it were down; the member is expelled from the group
   * only when Q servers refuse it: one server whose group re-formed differently (restarted
   * empty, a member of the other mode first there) must not end a membership a majority keeps.
   */
  #refused(server: Server, error: unknown): boolean {
    server.fresh = false;
    if (error instanceof ParamMismatchError || error instanceof MemberExistsError) {
      const first = server.refusal === undefined;
      server.refusal = error;
      if (this.#servers.filter((s) => s.refusal).length >= this.#quorum) {
        this.expelled(error);
        return true;
      }
      if (first) this.log.warn({ server: server.index, error: describe(error) }, 'one deployment refuses this member');
      setImmediate(() => this.#converge());
      return false;
    }
    this.log.debug({ server: server.index, error: describe(error) }, 'renewal failed on one deployment');
    setImmediate(() => this.#converge());
    return false;
  }

  #replied(server: Server, reply: QuorumCall): void {
    server.reply = reply;
    server.fresh = true;
    server.refusal = undefined;
    server.view.apply(reply.view, 'renewal');
    if (reply.floor > this.#seen) this.#seen = reply.floor;
    if (reply.view.epoch > this.#seen) this.#seen = reply.view.epoch;
    const shown = this.#grantOf(reply);
    // A grant this server shows for the activation under way is claimed from now on (S6).
    const own = this.#heldGrant();
    if (shown && own && shown.epoch === own.epoch && shown.slot === own.slot) server.claimed = shown;
    if (shown && this.#proposing && shown.epoch === this.#proposing.epoch) server.claimed = shown;
    server.keeper.watch(reply.view, reply.midpoint, this.#live && this.#ledger.held === undefined);
    this.#converge();
  }

  #grantOf(reply: QuorumCall | undefined): SlotGrant | undefined {
    const v = reply?.view;
    return v && (v.role === 'active' || v.role === 'releasing') ? { slot: v.slot, epoch: v.epoch } : undefined;
  }

  /** The member's lease in the group: the Q-th latest per-server deadline (of the grant, while it holds one). */
  #leaseDeadline(): number {
    if (this.#ledger.held) return this.#deadline();
    return quorumDeadline(
      this.#servers.map((server) => server.keeper.deadline),
      this.#quorum,
    );
  }

  /** The Q-th latest deadline among the servers whose latest reply shows the held grant. */
  #deadline(): number {
    const held = this.#ledger.held;
    if (!held) return Number.NEGATIVE_INFINITY;
    const deadlines = this.#servers.map((server) => {
      const g = this.#grantOf(server.reply);
      return g && g.slot === held.slot && g.epoch === held.epoch ? server.keeper.deadline : undefined;
    });
    return quorumDeadline(deadlines, this.#quorum);
  }

  /** The servers' word, combined: the grant Q of them show, released when Q ask; strays released everywhere. */
  #converge(): void {
    if (this.#phase !== 'running') return;
    // A server's word counts while the lease it last gave is valid: one failed renewal there
    // does not take back what it said.
    const replies = this.#servers.map((server) => (server.keeper.valid() ? server.reply : undefined));
    const answering = this.#servers.filter((server) => server.fresh).length;
    this.#quorumLost(answering);
    const grants = replies.map((r) => this.#grantOf(r));
    const { held: grant, strays } = tallyGrants(grants, this.#quorum);
    if (grant) {
      const asking = replies.map((r) => (r?.view.role === 'releasing' ? this.#grantOf(r) : undefined));
      const releasing = releaseAsked(asking, grant, this.#quorum);
      // The activate reason from a server that shows the grant; the release reason from one that asks.
      const showing = replies.find(
        (r) => r && r.view.epoch === grant.epoch && (!releasing || r.view.role === 'releasing'),
      );
      this.#word = {
        role: releasing ? 'releasing' : 'active',
        epoch: grant.epoch,
        slot: grant.slot,
        reason: showing?.view.reason ?? '',
        confirmed: true,
      };
    } else {
      // Prepare is a hint, given while Q servers name this member preparing (the next in line
      // there, a holder's last renewal older than P by that server's clock) and withdrawn once
      // fewer than Q do. A lease that lapsed ends a server's hint (no holder left to age there)
      // while this member takes the slot over: a server that ranks it among the best with no
      // slot, or shows it the grant it proposed, still counts for a member already preparing;
      // otherwise the takeover's round trips would withdraw the hint right before the activate.
      const prepared = this.state === 'preparing';
      const naming = replies.filter(
        (r) => r && (r.view.role === 'preparing' || (prepared && (r.eligible || this.#grantOf(r) !== undefined))),
      );
      const preparing = naming.length >= this.#quorum;
      this.#word = preparing
        ? { role: 'preparing', epoch: 0, slot: -1, reason: 'lease-aging', confirmed: true }
        : { role: 'standby', epoch: 0, slot: -1, reason: '', confirmed: true };
    }
    this.#releaseStrays(strays.map((i) => grants[i] as SlotGrant));
    const ledger = this.#ledger;
    const steps = decide({
      server: this.#word,
      held: ledger.held?.epoch,
      floor: ledger.floor,
      pending: ledger.pending,
      settling: (epoch) => ledger.isSettling(epoch),
      state: this.state,
      quarantined: false,
      idle: this.#actions.idle,
    });
    for (const step of steps) this.#carryOut(step);
    if (ledger.held) this.#armDeadline();
    else this.#propose(this.#servers.map((server) => (server.fresh ? server.reply : undefined)));
  }

  #quorumLost(answering: number): void {
    const lost = answering < this.#quorum;
    if (lost && !this.#lost) {
      this.advise('QUORUM_LOST', `only ${answering} of ${this.#servers.length} deployments answer`, {
        answering,
        quorum: this.#quorum,
        servers: this.#servers.length,
      });
    }
    this.#lost = lost;
  }

  /** Partial grants (fewer than Q servers show them) are released on every server at once, never kept. */
  #releaseStrays(strays: SlotGrant[]): void {
    for (const stray of strays) {
      if (this.#proposing?.epoch === stray.epoch || this.#ledger.held?.epoch === stray.epoch) continue;
      if (this.#ledger.pending === stray.epoch || this.#ledger.isSettling(stray.epoch)) continue;
      void this.#release(stray.epoch, 'partial');
    }
  }

  /**
   * Standing by, with Q servers ranking this member among the best and a slot free on Q of
   * them: propose that slot with an epoch above every floor seen and every server's TIME in µs,
   * to every server at once.
   */
  #propose(answered: (QuorumCall | undefined)[]): void {
    const waiting = this.state === 'standby' || this.state === 'preparing';
    if (this.#proposing || this.#ledger.pending !== undefined || !waiting || !this.#actions.idle) return;
    if (this.#s.clock.now() < this.#proposeAfter) return;
    // A quarantined server grants nothing: only the others count.
    const replies = answered.map((r) => (r && r.view.quarantineUntil <= r.view.serverNow ? r : undefined));
    const eligible = replies.filter((r) => r?.eligible).length;
    if (eligible < this.#quorum) return;
    const slot = chooseSlot(
      replies.map((r) => (r?.eligible ? r.free : undefined)),
      this.#quorum,
    );
    if (slot === undefined) return;
    const floors = replies.flatMap((r) => (r ? [r.floor] : []));
    const times = replies.flatMap((r) => (r ? [r.view.serverNow * 1000 + 999] : []));
    const epoch = proposeEpoch([...floors, this.#seen, this.#ledger.floor], times);
    this.#proposing = { slot, epoch };
    this.log.debug({ slot, epoch }, 'proposing');
    // Not behind a heartbeat in flight: that one carries no proposal.
    void Promise.all(this.#servers.map((server) => server.keeper.renewNow())).finally(() => {
      if (this.#proposing?.epoch === epoch) this.#proposing = undefined;
      if (this.#ledger.pending !== epoch && this.#ledger.held?.epoch !== epoch) {
        const h = this.#s.heartbeatInterval;
        this.#proposeAfter = this.#s.clock.now() + h * (0.25 + Math.random() * 0.5);
      }
      this.#converge();
    });
  }

  async #renewAll(): Promise<void> {
    await Promise.all(this.#servers.map((server) => server.keeper.renew()));
  }

  #carryOut(step: Step): void {
    if (step.do === 'revoke') this.#ledger.revoke(step.epoch);
    else if (step.do === 'retire') this.#ledger.retire(step.epoch);
    else if (step.do === 'activate') this.#scheduleActivation(step.epoch);
    else if (step.do === 'renew') void this.#renewAll();
    else if (step.do === 'release') void this.#release(step.epoch, step.reason);
    else if (step.do === 'prepare') this.#schedulePrepare('lease-aging');
    else if (step.do === 'withdraw-prepare') this.transition('standby');
    else if (step.do === 'deactivate') {
      if (step.advise) this.#leaseLost('fewer than a majority of the deployments count this member as active');
      else this.#demote(step.reason, step.release ? 'release' : 'none');
    }
  }

  #schedulePrepare(reason: PrepareInfo['reason']): void {
    if (this.state === 'standby') this.transition('preparing');
    const info: PrepareInfo = { reason };
    this.log.debug(info, 'prepare');
    this.emitSafe('prepare', info);
    void this.#actions.enqueue(async () => {
      const outcome = await runHandler(this.#options.onPrepare, info, this.#s.activationInterval);
      this.handlerFailed('prepare', outcome);
    });
  }

  #scheduleActivation(epoch: number): void {
    this.#ledger.pend(epoch);
    // With P > 0 every activate is preceded by a prepare: right before it when none came first.
    if (this.#s.preparationInterval > 0 && this.state !== 'preparing') this.#schedulePrepare('activation');
    void this.#actions.enqueue(async () => {
      if (this.#ledger.pending !== epoch) return;
      this.#ledger.unpend(epoch);
      const word = this.#word;
      if (this.#phase !== 'running' || word.role !== 'active' || word.epoch !== epoch) return;
      if (!this.#ledger.deliverable(epoch)) return;
      const held = this.#ledger.hold(epoch, word.slot, (word.reason || 'initial') as ActivateReason);
      // S4: the quorum's deadline, checked right before delivering activate.
      if (this.#s.clock.now() >= this.#deadline()) {
        this.#ledger.drop('lease-lost');
        this.#ledger.settled(epoch);
        void this.#release(epoch, 'lease-lost');
        return;
      }
      const info: ActivateInfo = { epoch, slot: held.slot, reason: held.reason, signal: held.signal };
      this.transition('active');
      this.#armDeadline();
      this.log.info({ epoch, slot: held.slot, reason: held.reason }, 'activate');
      this.emitSafe('activate', info);
      const outcome = await runHandler(this.#options.onActivate, info, this.#s.activationInterval);
      if (!outcome.ok) {
        this.handlerFailed('activate', outcome);
        if (this.#ledger.held === held) this.#demote('disabled', 'release');
      }
    });
  }

  /** S4 over K servers: past the Q-th latest per-server deadline, the member deactivates on its own. */
  #armDeadline(): void {
    clearTimeout(this.#deadlineTimer);
    if (!this.#ledger.held || this.state !== 'active') return;
    const delay = this.#deadline() - this.#s.clock.now();
    this.#deadlineTimer = setTimeout(
      () => {
        // Timers can fire a little early: "not yet" re-arms.
        if (this.isActive()) this.#armDeadline();
        else this.#checkDeadline();
      },
      Math.max(0, delay),
    );
    this.#deadlineTimer.unref();
  }

  /** Past the quorum's deadline while active: deactivate now. */
  #checkDeadline(): void {
    if (!this.#ledger.held || this.state !== 'active' || this.isActive()) return;
    this.#leaseLost('no majority of deployments renewed the lease before its deadline; deactivating');
  }

  #leaseLost(message: string): void {
    const held = this.#ledger.held;
    if (!held) return;
    this.advise('LEASE_LOST', message, { epoch: held.epoch });
    this.#demote('lease-lost', 'release');
  }

  #demote(reason: DeactivateReason, afterwards: 'release' | 'none'): void {
    const held = this.#ledger.drop(reason);
    if (!held) return;
    clearTimeout(this.#deadlineTimer);
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

  /** Gives a grant back on every server at once (a server that does not hold it ignores it). */
  async #release(epoch: number, reason: string): Promise<void> {
    if (this.#phase !== 'running' || !this.#ledger.beginRelease(epoch)) return;
    this.#ledger.retire(epoch);
    // A retired epoch is never delivered again: claiming it in a renewal (a server the release
    // below does not reach, e.g. one cut off) would only have it granted back (`reclaimed`),
    // given back once more, and the member quarantined there for A.
    for (const server of this.#servers) if (server.claimed?.epoch === epoch) server.claimed = undefined;
    try {
      const s = this.#s;
      await Promise.allSettled(
        this.#servers.map(async (server) => {
          if (!server.link) return;
          const view = await scripts.release(server.link.lease, s.keys, {
            channel: s.keys.events,
            memberId: s.id,
            epoch,
            reason,
            preparationInterval: s.preparationInterval,
            nonce: this.#nonce,
          });
          if (server.reply) server.reply = { ...server.reply, view };
        }),
      );
    } finally {
      this.#ledger.endRelease(epoch);
    }
    this.#converge();
  }

  #onAbort = (): void => void this.leave();

  protected async leaveOnce(): Promise<void> {
    if (this.state === 'left') return;
    this.#phase = 'leaving';
    this.#ledger.unpend();
    for (const server of this.#servers) server.keeper.unwatch();
    if (this.#ledger.held) this.#demote('leave', 'none');
    else if (this.state !== 'leaving') this.transition('leaving');
    await this.#actions.drained();
    this.#phase = 'stopped';
    const s = this.#s;
    await Promise.allSettled(
      this.#servers.map(async (server) => {
        server.keeper.stop();
        if (!server.link) return;
        try {
          await scripts.leave(server.link.lease, s.keys, {
            channel: s.keys.events,
            memberId: s.id,
            nonce: this.#nonce,
          });
        } catch (error) {
          this.log.warn({ server: server.index, error: describe(error) }, 'could not announce the leave there');
        }
      }),
    );
    this.log.info('left');
    await this.#close();
    this.transition('left');
  }

  async #close(): Promise<void> {
    this.#phase = 'stopped';
    clearTimeout(this.#deadlineTimer);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    for (const server of this.#servers) {
      server.keeper.stop();
      server.link?.subscriber.unsubscribe(this.#s.keys.events, server.onMessage, server.onResync);
      server.link?.release();
      server.link = undefined;
    }
    this.#releaseRole?.();
    this.#releaseRole = undefined;
    lagMonitor.release();
  }
}

/**
 * What an announcement frees: the slots of holders that gave them up (left, released, were
 * dropped or revoked), empty for a goal change (which slot it frees is the server's to say);
 * undefined when it frees none.
 */
function freedSlots(announcement: Announcement): number[] | undefined {
  let freed: number[] | undefined;
  for (const change of announcement.changes.values()) {
    if (change.role === 'goal') freed ??= [];
    else if ((change.role === 'standby' || change.role === 'gone') && change.slot >= 0) {
      freed ??= [];
      freed.push(change.slot);
    }
  }
  return freed;
}
