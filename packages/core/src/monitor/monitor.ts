import { EventEmitter } from 'node:events';
import { type Logger, pino } from 'pino';
import { redisUser } from '../connections/diagnosis.js';
import { acquireLink, type Link } from '../connections/pool.js';
import type { RedisSource } from '../connections/settings.js';
import { ConfigError, MonitorNotStartedError } from '../errors.js';
import { classify, describe } from '../failures.js';
import { DEFAULT_PREFIX, type GroupKeys, groupKeys } from '../keys.js';
import {
  MAX_INTERVAL,
  validateGroupName,
  validateLostInterval,
  validatePrefix,
  validateRedisSource,
} from '../options.js';
import { SingleFlight } from '../single-flight.js';
import { wakeAt } from '../wake-at.js';
import { changes } from './changes.js';
import { readTransitions, readTransitionsAfter, type Transition } from './history.js';
import { type GroupSnapshot, nextLossAt, readGroup } from './observe.js';

export interface MonitorOptions {
  /** One deployment, or K independent ones (an array: quorum mode, DESIGN §9). */
  redis: RedisSource | readonly RedisSource[];
  group: string;
  /** A member not heard from for this long counts as lost (default: the group's activation interval). */
  lostInterval?: number;
  logger?: Logger;
  /** Aborting it closes the monitor. */
  signal?: AbortSignal;
  prefix?: string;
  /** Replay the last K transitions as `transition` events on start (default 0). */
  history?: number;
}

export interface MonitorEvents {
  /** The active count, the goal or the membership (ids, weights, ranks, states, epochs) changed. */
  change: [GroupSnapshot];
  /** A new entry in the group's transition log. */
  transition: [Transition];
  /** A read failed after the last one succeeded: Redis is unreachable (or refuses) since `since` (ms, wall clock). */
  unreachable: [{ since: number; error: Error }];
  /** A read succeeded again after `unreachable`; a `change` follows if the group changed meanwhile. */
  reachable: [{ since: number; downMs: number }];
  error: [Error];
}

const READ_TIMEOUT_MS = 2000;
const RETRY_AFTER_FAILURE_MS = 500;

/**
 * A read-only observer of a group on one Redis deployment: not a member, invisible to members, and able to run under
 * a Redis user that may not write. Announcements only trigger reads (S7); a timer armed at
 * the earliest moment a member would count as lost catches crashes when nobody writes.
 */
export class ServerMonitor extends EventEmitter<MonitorEvents> implements AsyncIterable<GroupSnapshot> {
  readonly group: string;
  readonly #keys: GroupKeys;
  readonly #options: MonitorOptions;
  readonly #log: Logger;
  #link: Link | undefined;
  #snapshot: GroupSnapshot | undefined;
  #digest = '';
  #lastLogId = '0-0';
  /** Reads now, or right after the read in flight. */
  readonly #reads = new SingleFlight(
    () => this.#readOnce(),
    () => this.#closed,
  );
  #timer: NodeJS.Timeout | undefined;
  /** Cancels the wake-up at the next loss (`wakeAt`). */
  #unwake: (() => void) | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #unreachableSince: number | undefined;
  readonly #wakers = new Set<() => void>();

  /** @internal Use `monitorGroup()`. */
  constructor(options: MonitorOptions) {
    super();
    this.group = validateGroupName(options.group);
    validateRedisSource(options.redis);
    if (options.lostInterval !== undefined) validateLostInterval(options.lostInterval);
    if (options.history !== undefined && !(Number.isInteger(options.history) && options.history >= 0)) {
      throw new ConfigError('history', options.history, 'must be a whole number of transitions (0 or more)');
    }
    this.#options = options;
    this.#keys = groupKeys(this.group, validatePrefix(options.prefix ?? DEFAULT_PREFIX));
    this.#log =
      options.logger?.child({ component: 'understudy-monitor', group: this.group }) ?? pino({ enabled: false });
  }

  /** The latest state (read when the monitor started, then after every change). */
  snapshot(): GroupSnapshot {
    if (!this.#snapshot) throw new MonitorNotStartedError(this.group);
    return this.#snapshot;
  }

  /**
   * @internal Connects, subscribes, reads; called once by `monitorGroup`. Aborting the signal
   * or closing the monitor meanwhile makes it reject (with the signal's reason, or an
   * AbortError) once the step under way is over, and leaves nothing open.
   */
  async start(): Promise<void> {
    const { signal } = this.#options;
    signal?.throwIfAborted();
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    let link: Link | undefined;
    try {
      link = await acquireLink(this.#options.redis as RedisSource, READ_TIMEOUT_MS, READ_TIMEOUT_MS);
      this.#link = link;
      this.#throwIfStopped();
      await link.subscriber.subscribe(this.#keys.events, this.#onMessage, this.#onResync, READ_TIMEOUT_MS);
      this.#throwIfStopped();
      const history = await readTransitions(link.lease, this.#keys, Math.max(1, this.#options.history ?? 0));
      this.#throwIfStopped();
      this.#lastLogId = history.at(-1)?.id ?? '0-0';
      const replay = (this.#options.history ?? 0) > 0 ? history : [];
      const snapshot = await readGroup(link.lease, this.#keys, this.#options.lostInterval);
      this.#throwIfStopped();
      this.#accept(snapshot, performance.now());
      setImmediate(() => {
        for (const transition of replay) this.emit('transition', transition);
      });
    } catch (error) {
      await this.close();
      // close() may have run while a step was under way (before the connection was acquired,
      // or before the subscription was in place): undo what start did (both are idempotent).
      link?.subscriber.unsubscribe(this.#keys.events, this.#onMessage, this.#onResync);
      link?.release();
      if (signal?.aborted) throw signal.reason;
      if (isAbortError(error)) throw error;
      throw classify(error, {
        operation: `monitor group ${this.group}`,
        user: redisUser(this.#options.redis as RedisSource),
        group: this.group,
      });
    }
  }

  /** During start: an abort or a close() ends it. */
  #throwIfStopped(): void {
    this.#options.signal?.throwIfAborted();
    if (this.#closed)
      throw new DOMException(`the monitor of group ${this.group} was closed while it started`, 'AbortError');
  }

  /**
   * Since when (ms, wall clock) reads have been failing, or undefined while Redis answers. The
   * snapshot is then the last one read, and may be stale: watchers should say so.
   */
  get unreachableSince(): number | undefined {
    return this.#unreachableSince;
  }

  /**
   * Reads the group now, or right after the read in flight; settles when that read is done
   * (live views call it to show renewals; changes are read on their own).
   */
  refresh(): Promise<void> {
    return this.#reads.run();
  }

  /** Stops watching; iterators end. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The current snapshot, then one per change, until the monitor closes. */
  [Symbol.asyncIterator](): AsyncIterator<GroupSnapshot> {
    return changes(this, this.#snapshot, () => this.#closed, this.#wakers);
  }

  #onMessage = (): void => {
    void this.#reads.run();
  };

  #onResync = (): void => {
    void this.#reads.run();
  };

  #onAbort = (): void => {
    void this.close();
  };

  async #readOnce(): Promise<void> {
    const link = this.#link;
    if (!link) return;
    const sentAt = performance.now();
    // Both requests leave together, the transitions right behind the snapshot: one round trip,
    // so a read asked for meanwhile (an announcement) does not wait for a second reply.
    const snapshotRead = readGroup(link.lease, this.#keys, this.#options.lostInterval);
    const transitions = readTransitionsAfter(link.lease, this.#keys, this.#lastLogId);
    transitions.catch(() => undefined); // awaited below, unless the snapshot failed first
    try {
      const snapshot = await snapshotRead;
      if (this.#closed) return;
      const since = this.#unreachableSince;
      if (since !== undefined) {
        this.#unreachableSince = undefined;
        this.emit('reachable', { since, downMs: Date.now() - since });
      }
      this.#accept(snapshot, (sentAt + performance.now()) / 2);
      for (const transition of await transitions) {
        this.#lastLogId = transition.id;
        if (!this.#closed) this.emit('transition', transition);
      }
    } catch (error) {
      if (this.#closed) return;
      this.#log.warn({ error: describe(error) }, 'read failed; retrying');
      const failure = error instanceof Error ? error : new Error(String(error));
      if (this.#unreachableSince === undefined) {
        this.#unreachableSince = Date.now();
        this.emit('unreachable', { since: this.#unreachableSince, error: failure });
      }
      if (this.listenerCount('error') > 0) this.emit('error', failure);
      this.#arm(RETRY_AFTER_FAILURE_MS);
    }
  }

  #accept(snapshot: GroupSnapshot, midpoint: number): void {
    this.#snapshot = snapshot;
    const digest = JSON.stringify([
      snapshot.activeCount,
      snapshot.activeGoal,
      snapshot.members.map((m) => [m.id, m.weight, m.rank, m.state, m.epoch]),
    ]);
    if (digest !== this.#digest) {
      const first = this.#digest === '';
      this.#digest = digest;
      if (!first) this.emit('change', snapshot);
    }
    const lossAt = nextLossAt(snapshot, this.#options.lostInterval);
    this.#disarm();
    // Not a millisecond early (see `LeaseKeeper.watch`): an early read shows nobody lost yet.
    if (lossAt !== undefined && !this.#closed) {
      this.#unwake = wakeAt(performance, midpoint + (lossAt - snapshot.serverTime), () => void this.#reads.run());
    }
  }

  #disarm(): void {
    clearTimeout(this.#timer);
    this.#unwake?.();
    this.#unwake = undefined;
  }

  #arm(delayMs: number): void {
    this.#disarm();
    if (this.#closed) return;
    // Never beyond a day (no lease lasts longer): a longer delay would overflow Node's timer into 1 ms.
    this.#timer = setTimeout(() => void this.#reads.run(), Math.min(MAX_INTERVAL, Math.max(0, delayMs)));
    this.#timer.unref();
  }

  async #close(): Promise<void> {
    this.#closed = true;
    this.#disarm();
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
    const link = this.#link;
    this.#link = undefined;
    if (link) {
      link.subscriber.unsubscribe(this.#keys.events, this.#onMessage, this.#onResync);
      link.release();
    }
  }
}

function isAbortError(error: unknown): boolean {
  return error instanceof Error && error.name === 'AbortError';
}
