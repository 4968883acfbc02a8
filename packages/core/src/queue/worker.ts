import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { redisUser } from '../connections/diagnosis.js';
import { acquireLink, type Link } from '../connections/pool.js';
import { ConfigError, RedisUnavailableError } from '../errors.js';
import { classify, describe, renewalFailure } from '../failures.js';
import { DEFAULT_PREFIX } from '../keys.js';
import { type Clock, lagMonitor, monotonicClock } from '../member/clock.js';
import {
  commandTimeoutFor,
  validateGroupName,
  validateMemberId,
  validatePrefix,
  validateRedisSource,
} from '../options.js';
import { Participant } from '../participant.js';
import { claimRole } from '../role.js';
import { queueScripts, type WorkerReply } from '../scripts.js';
import { type Delivery, InboxReader, openInbox, parseDelivery, RecentTokens } from './inbox.js';
import { type QueueKeys, queueKeys } from './keys.js';
import { LeaseClock, ReapWatch } from './lease.js';
import { type WorkerSettings, workerSettings } from './options.js';
import { TaskRunner } from './tasks.js';
import type { JoinQueueOptions, QueueAdvisoryCode, WorkerEvents, WorkerState } from './types.js';

/**
 * A worker of a distributed queue (DESIGN §11, docs/MESSAGES.md): holds a lease like a group
 * member (renewed every H, lasting A), receives deliveries in its inbox, runs the handler for
 * each, and completes it with the delivery's fencing token.
 */
export class QueueWorker extends Participant<WorkerEvents> {
  readonly queue: string;
  readonly id: string;
  readonly #settings: WorkerSettings;
  readonly #options: JoinQueueOptions;
  readonly #keys: QueueKeys;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #nonce = randomBytes(6).toString('hex');
  readonly #tasks: TaskRunner;
  readonly #received: RecentTokens;
  #state: WorkerState = 'working';
  #link: Link | undefined;
  #inbox: InboxReader | undefined;
  #releaseRole: (() => void) | undefined;
  readonly #time: LeaseClock;
  readonly #watch: ReapWatch;
  /** The highest token this worker was given (sent with every script: S2, S6). */
  #tokenFloor = 0;
  #renewal: Promise<void> = Promise.resolve();
  #lastRenewalStart = 0;
  #renewTimer: NodeJS.Timeout | undefined;
  #leaseTimer: NodeJS.Timeout | undefined;
  #renewalsStopped = false;
  #redisDown = false;
  #leaseLost = false;
  #quarantineReported = 0;
  /**
   * Deliveries read before the join's reply (the join dispatches): run once the lease is known,
   * right after `joinQueue` resolved.
   */
  #early: Delivery[] | undefined = [];

  /** Use `joinQueue()`. */
  constructor(options: JoinQueueOptions) {
    super();
    this.queue = validateGroupName(options.queue, 'queue');
    this.id = validateMemberId(
      options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`,
      'workerId',
    );
    this.#settings = workerSettings(options);
    validateRedisSource(options.redis);
    if (typeof options.handler !== 'function') throw new ConfigError('handler', options.handler, 'must be a function');
    this.#options = options;
    this.#keys = queueKeys(this.queue, validatePrefix(options.prefix ?? DEFAULT_PREFIX));
    this.#clock = options.clock ?? monotonicClock;
    this.#time = new LeaseClock(this.#clock, this.#settings);
    this.#watch = new ReapWatch(this.#clock, () => void this.#renew());
    this.#received = new RecentTokens(2 * this.#settings.activationInterval);
    const bindings = { component: 'understudy-worker', queue: this.queue, worker: this.id };
    this.#log = options.logger?.child(bindings) ?? pino({ enabled: false });
    this.#tasks = new TaskRunner({
      queue: this.queue,
      handler: options.handler,
      clock: this.#clock,
      log: this.#log,
      retryDelay: Math.min(50, this.#settings.heartbeatInterval),
      complete: async (delivery, outcome) => {
        const { id: taskId, token } = delivery;
        const inline = this.#state === 'working';
        const args = { workerId: this.id, taskId, token, outcome, tokenFloor: this.#tokenFloor, inline };
        const { reply } = await this.#call((c) => queueScripts.complete(c, this.#keys, args));
        // The next task, if the completion dispatched one to this worker: after this one settled.
        if (reply.next.length > 0) setImmediate(() => this.#handOver(reply.next));
        return reply;
      },
      mayRetry: () => this.#clock.now() < this.#time.deadline && this.#state !== 'left',
      settled: (settled) => this.#emitSafe('task', settled),
      error: (error) => {
        if (this.listenerCount('error') > 0) this.#emitSafe('error', error);
      },
    });
  }

  get state(): WorkerState {
    return this.#state;
  }

  /** Deliveries whose handler is running now. */
  get inFlight(): number {
    return this.#tasks.size;
  }

  /** @internal Connects, joins, starts reading the inbox; called once by `joinQueue`. */
  async start(): Promise<void> {
    const { signal } = this.#options;
    signal?.throwIfAborted();
    this.#releaseRole = claimRole('queue', this.queue);
    const { heartbeatInterval: h, activationInterval: a } = this.#settings;
    lagMonitor.acquire();
    try {
      this.#link = await acquireLink(this.#options.redis, commandTimeoutFor(h), a);
      const blocking = await openInbox(this.#options.redis, a);
      this.#inbox = new InboxReader(
        blocking,
        this.#keys.inbox(this.id),
        Math.max(1, Math.ceil(a / 1000)),
        (delivery) => this.#onDelivery(delivery),
        (error) => this.#log.debug({ error: describe(error) }, 'inbox read failed; reading again'),
      );
      await this.#join();
      // After joinQueue resolved: listeners attached at once see these deliveries' events too.
      setImmediate(() => {
        const early = this.#early ?? [];
        this.#early = undefined;
        for (const delivery of early) this.#onDelivery(delivery);
      });
    } catch (error) {
      await this.#close();
      if (signal?.aborted) throw signal.reason;
      throw classify(error, {
        operation: `join queue ${this.queue}`,
        user: redisUser(this.#options.redis),
        actor: `worker ${this.id}`,
      });
    }
    // Aborted while the join script ran: the worker is in the queue, so it leaves it again.
    if (signal?.aborted) {
      await this.leave();
      signal.throwIfAborted();
    }
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#log.info({ ...this.#settings }, 'joined');
  }

  /**
   * The join: a renewal that adds the worker. One whose reply timed out (a busy process, a slow
   * Redis) is sent again until A has passed: the nonce makes a join that did run idempotent.
   */
  async #join(): Promise<void> {
    const { heartbeatInterval: h, activationInterval: a } = this.#settings;
    const giveUpAt = this.#clock.now() + a;
    for (;;) {
      try {
        await this.#renewOnce(true);
        return;
      } catch (error) {
        if (!(error instanceof RedisUnavailableError) || this.#clock.now() >= giveUpAt) throw error;
        this.#log.debug({ error: describe(error) }, 'join did not answer in time; sending it again');
        await sleep(Math.min(50, h));
      }
    }
  }

  // ---- lease -----------------------------------------------------------------------------

  #scheduleRenewal(): void {
    clearTimeout(this.#renewTimer);
    if (this.#renewalsStopped) return;
    const at = this.#lastRenewalStart + this.#settings.heartbeatInterval;
    this.#renewTimer = setTimeout(() => void this.#renew(), Math.max(0, at - this.#clock.now()));
    this.#renewTimer.unref();
  }

  /** Renews now, after the renewal in flight (never two at once). */
  #renew(): Promise<void> {
    this.#renewal = this.#renewal.then(() => this.#renewOnce(false));
    return this.#renewal;
  }

  async #renewOnce(joining: boolean): Promise<void> {
    if (this.#renewalsStopped) return;
    const s = this.#settings;
    const claims = this.#tasks.claims();
    const margin = this.#time.margin();
    this.#lastRenewalStart = this.#clock.now();
    let result: { reply: WorkerReply; sentAt: number };
    try {
      const args = {
        workerId: this.id,
        weight: s.weight,
        capacity: this.#state === 'working' ? s.capacity : 0,
        completeTime: s.completeTime,
        maxDeliveries: s.maxDeliveries,
        activationInterval: s.activationInterval,
        nonce: this.#nonce,
        host: hostname(),
        pid: process.pid,
        tokenFloor: this.#tokenFloor,
        joining,
        claims: claims.held,
      };
      result = await this.#call((c) => queueScripts.renew(c, this.#keys, args));
    } catch (error) {
      if (joining) throw error;
      if (error instanceof RedisUnavailableError && error.timedOut) this.#link?.resetLease();
      if (!this.#redisDown) {
        this.#redisDown = true;
        this.#advise(renewalFailure(error), `renewal failed: ${describe(error)}`, { error: describe(error) });
      }
      if (error instanceof ConfigError) void this.leave(); // another worker object holds the id now
      this.#scheduleRenewal();
      return;
    }
    const { reply, sentAt } = result;
    if (this.#redisDown) {
      this.#redisDown = false;
      this.#log.info('Redis answers again');
    }
    // S4: a reply handled after the deadline must not revive the lease of tasks already aborted.
    this.#checkLease();
    this.#time.extend(sentAt, margin);
    this.#leaseLost = false;
    this.#armLease();
    if (reply.status === 'rejoined')
      this.#log.warn('the queue had dropped this worker (lease lapsed or state lost); rejoined');
    if (reply.lost.length > 0) {
      this.#tasks.abort('the queue no longer gives this worker the task', { tokens: claims.tokens, ids: reply.lost });
    }
    this.#handOver(reply.next);
    this.#scheduleRenewal();
  }

  #armLease(): void {
    clearTimeout(this.#leaseTimer);
    this.#leaseTimer = setTimeout(() => this.#checkLease(), Math.max(0, this.#time.deadline - this.#clock.now()));
    this.#leaseTimer.unref();
  }

  /** S4: no renewal succeeded before the lease deadline: every running task's signal aborts. */
  #checkLease(): void {
    if (this.#leaseLost || this.#state === 'left') return;
    if (this.#clock.now() < this.#time.deadline) {
      this.#armLease();
      return;
    }
    this.#leaseLost = true;
    if (this.#tasks.size > 0) {
      this.#advise('LEASE_LOST', 'no renewal succeeded before the lease deadline; aborting the running tasks', {
        tasks: this.#tasks.size,
      });
    }
    this.#tasks.abort('lease lost');
  }

  // ---- tasks -----------------------------------------------------------------------------

  /** Deliveries that came in a script's reply (inbox elements, as text). */
  #handOver(elements: readonly string[]): void {
    for (const element of elements) this.#onDelivery(parseDelivery(element));
  }

  #onDelivery(delivery: Delivery): void {
    if (this.#early) {
      this.#early.push(delivery);
      return;
    }
    // Sent again by a renewal while the reply that carried it was on its way: once is enough.
    if (!this.#received.add(delivery.token, this.#clock.now())) return;
    if (delivery.token > this.#tokenFloor) this.#tokenFloor = delivery.token;
    this.#watch.armBy(delivery.expires);
    // Leaving: the leave script hands it back, unstarted.
    if (this.#state !== 'working') return;
    const now = this.#clock.now();
    const deadline = this.#time.localTime(delivery.expires) - this.#time.margin();
    if (now >= deadline || now >= this.#time.deadline) {
      this.#log.debug({ task: delivery.id, token: delivery.token }, 'delivery expired before it was read; not started');
      return;
    }
    const { id, token, deliveries, expires } = delivery;
    // The stream id is the enqueue's Redis ms; the delivery expires completeTime after its dispatch.
    const enqueuedAt = Number(id.slice(0, id.indexOf('-')));
    this.#emitSafe('start', { id, token, deliveries, enqueuedAt, deliveredAt: expires - this.#settings.completeTime });
    this.#tasks.start(delivery, deadline);
  }

  // ---- leaving ---------------------------------------------------------------------------

  #onAbort = (): void => {
    void this.leave();
  };

  /** Capacity 0, the running handlers drained, then the leave script hands back what the worker still holds. */
  protected async leaveOnce(): Promise<void> {
    if (this.#state === 'left') return;
    this.#transition('leaving');
    // Capacity 0 from now on: nothing more is dispatched to this worker.
    await this.#renew();
    await this.#tasks.drained(this.#settings.heartbeatInterval);
    this.#renewalsStopped = true;
    clearTimeout(this.#renewTimer);
    await this.#renewal;
    this.#inbox?.close();
    try {
      await this.#call((c) => queueScripts.leave(c, this.#keys, { workerId: this.id, nonce: this.#nonce }));
      this.#log.info('left');
    } catch (error) {
      this.#log.warn({ error: describe(error) }, 'could not announce the leave; the lease lapses on its own');
    }
    await this.#close();
  }

  async #close(): Promise<void> {
    this.#renewalsStopped = true;
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#leaseTimer);
    this.#watch.stop();
    this.#tasks.abort('the worker left');
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    this.#inbox?.close();
    this.#link?.release();
    this.#link = undefined;
    this.#releaseRole?.();
    lagMonitor.release();
    if (this.#state === 'working') this.#transition('leaving');
    this.#transition('left');
  }

  // ---- plumbing --------------------------------------------------------------------------

  /** Runs one of the worker's scripts and notes the Redis time it read, for the deadlines of its tasks. */
  async #call(
    script: (connection: Redis | Cluster) => Promise<WorkerReply>,
  ): Promise<{ reply: WorkerReply; sentAt: number }> {
    const link = this.#link;
    if (!link) throw new RedisUnavailableError(`worker ${this.id} has no connection`);
    const sentAt = this.#clock.now();
    const reply = await script(link.lease);
    this.#time.noteReply(sentAt, reply.serverNow);
    this.#watch.arm(sentAt, reply.serverNow + reply.serverMicros / 1000, reply.reapAt);
    for (const dead of reply.dead) {
      this.#advise('DEAD_LETTER', `task ${dead.id} moved to the dead letters after ${dead.deliveries} deliveries`, {
        task: dead.id,
        deliveries: dead.deliveries,
      });
    }
    if (reply.quarantineUntil > reply.serverNow && reply.quarantineUntil !== this.#quarantineReported) {
      this.#quarantineReported = reply.quarantineUntil;
      this.#advise('QUARANTINE', 'the queue lost state or changed servers: nothing is dispatched for a while', {
        until: reply.quarantineUntil,
        reason: reply.quarantineReason,
      });
    }
    return { reply, sentAt };
  }

  #transition(to: WorkerState): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.#emitSafe('state', { from, to });
  }

  #advise(code: QueueAdvisoryCode, message: string, details: Record<string, unknown> = {}): void {
    this.#log.warn({ code, ...details }, message);
    this.#emitSafe('advisory', { code, message, queue: this.queue, worker: this.id, ...details });
  }

  #emitSafe<E extends keyof WorkerEvents>(event: E, ...args: WorkerEvents[E]): void {
    try {
      (this.emit as (event: E, ...args: WorkerEvents[E]) => boolean)(event, ...args);
    } catch (error) {
      this.#log.error({ event, error: describe(error) }, 'an event listener threw');
    }
  }
}

/** Joins a queue as a worker; resolves once the worker is registered and reading its inbox. */
export async function joinQueue(options: JoinQueueOptions): Promise<QueueWorker> {
  const worker = new QueueWorker(options);
  await worker.start();
  return worker;
}
