import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { redisUser } from '../connections/diagnosis.js';
import { acquireLink, type Link } from '../connections/pool.js';
import type { RedisSource } from '../connections/settings.js';
import type { Heard } from '../connections/subscriber.js';
import { RedisUnavailableError, UnderstudyError } from '../errors.js';
import { classify, describe } from '../failures.js';
import { type CommitResult, commitMessage } from '../feed/commit.js';
import { commandTimeoutFor } from '../options.js';
import { guardReplication } from '../replication-guard.js';
import type { MemberScriptName, MemberView, ScriptArgs } from '../script-specs.js';
import { scripts } from '../scripts.js';
import type { MemberSettings } from './settings.js';
import type { GroupView } from './view.js';

/** A script's reply, timed on the member's clock. */
export interface Call {
  view: MemberView;
  /** When the script was sent, and halfway between sending and the reply. */
  sentAt: number;
  midpoint: number;
}

export type Listener = (message: Heard) => void;

/**
 * One member object's way to its group: the lease and subscriber connections, and the member
 * scripts run on the lease connection, each timed on the member's clock. Every script carries
 * the object's nonce, which tells its join apart from another object's with the same id.
 */
export class MemberCalls {
  readonly #s: MemberSettings;
  readonly #log: Logger;
  readonly #host = hostname();
  readonly #nonce = randomBytes(6).toString('hex');
  #link: Link | undefined;
  #listeners: [Listener, () => void] | undefined;

  constructor(settings: MemberSettings, log: Logger) {
    this.#s = settings;
    this.#log = log;
  }

  /** The lease connection, while connected. */
  get lease(): Link['lease'] | undefined {
    return this.#link?.lease;
  }

  /** Opens (or shares) the connections, checks the replication settings, subscribes to the group's channel. */
  async connect(redis: RedisSource, onMessage: Listener, onResync: () => void, signal?: AbortSignal): Promise<void> {
    const { heartbeatInterval: h, activationInterval: a, keys } = this.#s;
    this.#link = await acquireLink(redis, commandTimeoutFor(h), a);
    await guardReplication(redis, this.#link.lease, a, this.#log);
    signal?.throwIfAborted();
    this.#listeners = [onMessage, onResync];
    await this.#link.subscriber.subscribe(keys.events, onMessage, onResync, a);
  }

  /**
   * Runs the join script; a reply that timed out (a busy process, a slow Redis) is retried
   * until one activation interval has passed: the nonce makes a join that did run idempotent.
   */
  async join(weight: number): Promise<Call> {
    const s = this.#s;
    const args = { ...this.#member(weight, s.activeGoal), nonce: this.#nonce };
    const giveUpAt = s.clock.now() + s.activationInterval;
    for (;;) {
      try {
        return await this.#call('join', args);
      } catch (error) {
        if (!(error instanceof UnderstudyError && error.retryable) || s.clock.now() >= giveUpAt) throw error;
        this.#log.debug({ error: describe(error) }, 'join did not answer in time; retrying');
        await sleep(Math.min(50, s.heartbeatInterval));
      }
    }
  }

  /**
   * A renewal carries the member's weight, what it holds, and what it knows of the group (S2,
   * S6). Its reply is a full view, or in the steady state the server's time alone: the view
   * completes it from the latest full one.
   */
  renew(weight: number, held: { epoch: number; slot: number } | undefined, view: GroupView): Promise<Call> {
    const knows = view.knowledge(held?.epoch ?? 0);
    const args = {
      ...this.#member(weight, view.activeGoal),
      claimedEpoch: held?.epoch ?? 0,
      claimedSlot: held?.slot ?? -1,
      nonce: this.#nonce,
      knownIncarnation: knows.incarnation,
      knownVersion: knows.version,
      epochFloor: knows.epochFloor,
      leaseEnd: knows.leaseEnd,
    };
    return this.#timed(async (lease) => view.complete(await scripts.renew(lease, this.#s.keys, args)));
  }

  setWeight(weight: number): Promise<Call> {
    const s = this.#s;
    return this.#call('set_weight', {
      channel: s.keys.events,
      memberId: s.id,
      weight,
      preparationInterval: s.preparationInterval,
      nonce: this.#nonce,
    });
  }

  /** Gives a slot back; `disable` also sets the weight to 0 in the same step (a failed activate handler). */
  release(epoch: number, reason: string, disable: boolean): Promise<Call> {
    const s = this.#s;
    const slot = {
      channel: s.keys.events,
      memberId: s.id,
      epoch,
      preparationInterval: s.preparationInterval,
      nonce: this.#nonce,
    };
    return disable ? this.#call('disable', slot) : this.#call('release', { ...slot, reason });
  }

  /** Commits the feed up to message `id` for the slot this object holds with `epoch` (DESIGN §10). */
  commit(slot: number, epoch: number, id: string): Promise<CommitResult> {
    const lease = this.#link?.lease;
    if (!lease) return Promise.reject(new RedisUnavailableError(`member ${this.#s.id} has no connection`));
    return commitMessage(lease, this.#s.keys, { memberId: this.#s.id, nonce: this.#nonce, slot, epoch, id });
  }

  leave(): Promise<Call> {
    return this.#call('leave', { channel: this.#s.keys.events, memberId: this.#s.id, nonce: this.#nonce });
  }

  /**
   * durability 'replicated': a renewal (a write on this connection, after the grant in Redis's
   * replication stream) followed by WAIT 1: once a replica acknowledged it, it has the grant.
   */
  async replicated(renew: () => Promise<void>): Promise<boolean> {
    await renew();
    const lease = this.#link?.lease;
    if (!lease) return false;
    const timeout = Math.max(1, Math.floor(this.#s.heartbeatInterval / 2));
    try {
      if (Number(await lease.call('WAIT', 1, timeout)) >= 1) return true;
      this.#log.warn({ timeoutMs: timeout }, 'no replica acknowledged the grant yet; activation waits');
    } catch (error) {
      this.#log.warn({ error: describe(error) }, 'WAIT failed; activation waits');
    }
    return false;
  }

  /** A reply that never came would pair later replies with the wrong requests: reopen the lease connection. */
  resetLease(): void {
    this.#link?.resetLease();
  }

  /** Unsubscribes and releases the connections. */
  close(): void {
    const link = this.#link;
    this.#link = undefined;
    if (!link) return;
    if (this.#listeners) link.subscriber.unsubscribe(this.#s.keys.events, ...this.#listeners);
    link.release();
  }

  /** What the member sends about itself and the group's parameters, on joining and every renewal. */
  #member(weight: number, activeGoal: number) {
    const s = this.#s;
    return {
      channel: s.keys.events,
      memberId: s.id,
      weight,
      activeGoal,
      activationInterval: s.activationInterval,
      heartbeatInterval: s.heartbeatInterval,
      preparationInterval: s.preparationInterval,
      host: this.#host,
      pid: process.pid,
    };
  }

  #call<N extends MemberScriptName>(name: N, args: ScriptArgs<N>): Promise<Call> {
    return this.#timed((lease) => scripts[name](lease, this.#s.keys, args));
  }

  /** Runs a script on the lease connection, timed on the member's clock. */
  async #timed(run: (lease: Link['lease']) => Promise<MemberView>): Promise<Call> {
    const s = this.#s;
    const link = this.#link;
    if (!link) throw new RedisUnavailableError(`member ${s.id} has no connection`);
    const sentAt = s.clock.now();
    const view = await run(link.lease);
    const receivedAt = s.clock.now();
    return { view, sentAt, midpoint: (sentAt + receivedAt) / 2 };
  }
}

/** The error a failed join becomes (`classify`): a refusal by ACL, or Redis unavailable. */
export function joinFailure(error: unknown, redis: RedisSource, s: MemberSettings): Error {
  return classify(error, {
    operation: `join group ${s.group}`,
    user: redisUser(redis),
    group: s.group,
    actor: `member ${s.id}`,
  });
}
