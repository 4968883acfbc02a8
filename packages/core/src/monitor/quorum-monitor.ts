import { EventEmitter } from 'node:events';
import { type Logger, pino } from 'pino';
import type { RedisSource } from '../connections/settings.js';
import { ConfigError, MonitorNotStartedError } from '../errors.js';
import { describe } from '../failures.js';
import { validateGroupName, validateLostInterval, validateQuorumSources } from '../options.js';
import { quorumSize } from '../quorum.js';
import {
  DEDUP_WINDOW_MS,
  type QuorumTransition,
  type ServerReach,
  serverLabel,
  transitionKey,
} from '../quorum-admin.js';
import { changes } from './changes.js';
import { combineSnapshots } from './combine.js';
import type { Transition } from './history.js';
import { type MonitorEvents, type MonitorOptions, ServerMonitor } from './monitor.js';
import type { GroupSnapshot } from './observe.js';

/** Copies of transitions remembered to merge later copies into (the oldest are dropped). */
const RECENT_TRANSITIONS = 1000;

/** A transition some servers logged, until Q did. */
interface Seen {
  key: string;
  time: number;
  servers: number[];
  emitted: boolean;
  transition: Transition;
}

/** A server that did not answer at start is tried again this often, until it does. */
const RESTART_AFTER_MS = 1000;

/** One of the K deployments: its own monitor once one started on it. */
interface Server {
  source: RedisSource;
  monitor: ServerMonitor | undefined;
  starting: boolean;
  /** Why it did not answer when last tried or read. */
  error: string | undefined;
}

/**
 * A read-only observer of a group in quorum mode (DESIGN §9): one monitor per deployment, each
 * reading and re-reading on its own, and a snapshot combined from the servers that answer
 * (`combineSnapshots`): a member is active only when Q servers show it the same slot and epoch.
 * A slow or dead server never holds the report back while Q others answer; with fewer than Q
 * answering, the monitor is `unreachable` and keeps its last snapshot. New transitions are
 * emitted once Q servers logged them (see `#transition`); `servers()` says which deployments answer.
 */
export class QuorumMonitor extends EventEmitter<MonitorEvents> implements AsyncIterable<GroupSnapshot> {
  readonly group: string;
  readonly #options: MonitorOptions;
  readonly #servers: Server[];
  readonly #quorum: number;
  readonly #log: Logger;
  #snapshot: GroupSnapshot | undefined;
  #digest = '';
  #unreachableSince: number | undefined;
  #closed = false;
  #closing: Promise<void> | undefined;
  #retry: NodeJS.Timeout | undefined;
  readonly #wakers = new Set<() => void>();
  readonly #recent: Seen[] = [];

  /** @internal Use `monitorGroup()`. */
  constructor(options: MonitorOptions & { redis: readonly RedisSource[] }) {
    super();
    this.group = validateGroupName(options.group);
    validateQuorumSources(options.redis);
    if (options.lostInterval !== undefined) validateLostInterval(options.lostInterval);
    if (options.history !== undefined && options.history !== 0) {
      throw new ConfigError(
        'history',
        options.history,
        'is not available in quorum mode: every deployment keeps its own transition log (read each with readHistory)',
      );
    }
    this.#options = options;
    this.#servers = options.redis.map((source) => ({ source, monitor: undefined, starting: false, error: undefined }));
    this.#quorum = quorumSize(options.redis.length);
    this.#log =
      options.logger?.child({ component: 'understudy-monitor', group: this.group, quorum: this.#quorum }) ??
      pino({ enabled: false });
  }

  /** The latest combined state. */
  snapshot(): GroupSnapshot {
    if (!this.#snapshot) throw new MonitorNotStartedError(this.group);
    return this.#snapshot;
  }

  /** Q: how many servers must agree. */
  get quorum(): number {
    return this.#quorum;
  }

  /**
   * Each deployment as the monitor sees it now: reachable (its reads answer) or not, with why
   * and since when. The combined snapshot counts only the reachable ones.
   */
  servers(): (ServerReach & { unreachableSince?: number })[] {
    return this.#servers.map((s, index) => {
      const since = s.monitor?.unreachableSince;
      const reachable = s.monitor !== undefined && since === undefined;
      return {
        index,
        server: serverLabel(s.source, index),
        reachable,
        ...(reachable ? {} : { error: s.error ?? 'not answering' }),
        ...(since === undefined ? {} : { unreachableSince: since }),
      };
    });
  }

  /** Since when (ms, wall clock) fewer than Q servers answer, or undefined. */
  get unreachableSince(): number | undefined {
    return this.#unreachableSince;
  }

  /**
   * @internal Starts a monitor on every deployment at once; resolves once Q of them read the
   * group (the others are tried again in the background), rejects when fewer than Q can.
   */
  async start(): Promise<void> {
    const { signal } = this.#options;
    signal?.throwIfAborted();
    signal?.addEventListener('abort', this.#onAbort, { once: true });
    const errors: unknown[] = [];
    await new Promise<void>((resolve) => {
      let settled = 0;
      let started = 0;
      for (const server of this.#servers) {
        void this.#startServer(server).then((error) => {
          settled += 1;
          if (error === undefined) started += 1;
          else errors.push(error);
          if (started >= this.#quorum || settled === this.#servers.length) resolve();
        });
      }
    });
    if (this.#closed || signal?.aborted || this.#started().length < this.#quorum) {
      await this.close();
      signal?.throwIfAborted();
      if (errors[0] !== undefined) throw errors[0];
      throw new DOMException(`the monitor of group ${this.group} was closed while it started`, 'AbortError');
    }
    this.#combine();
    this.#armRetry();
  }

  /** Reads every server now; settles when they answered (or failed). */
  async refresh(): Promise<void> {
    await Promise.all(this.#started().map((m) => m.refresh()));
  }

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

  #started(): ServerMonitor[] {
    return this.#servers.flatMap((s) => (s.monitor ? [s.monitor] : []));
  }

  /** Starts a monitor on one deployment; resolves with the error if it could not. */
  async #startServer(server: Server): Promise<unknown> {
    if (server.monitor || server.starting || this.#closed) return undefined;
    server.starting = true;
    const monitor = new ServerMonitor({
      redis: server.source,
      group: this.group,
      lostInterval: this.#options.lostInterval,
      logger: this.#options.logger,
      prefix: this.#options.prefix,
    });
    try {
      await monitor.start();
    } catch (error) {
      server.error = describe(error);
      this.#log.debug({ error: server.error }, 'a deployment did not answer; trying it again later');
      return error;
    } finally {
      server.starting = false;
    }
    if (this.#closed) {
      await monitor.close();
      return undefined;
    }
    server.monitor = monitor;
    server.error = undefined;
    const index = this.#servers.indexOf(server);
    monitor.on('transition', (t) => this.#transition(index, t));
    monitor.on('change', this.#combine);
    monitor.on('reachable', () => {
      server.error = undefined;
      this.#combine();
    });
    monitor.on('unreachable', ({ error }) => {
      server.error = describe(error);
      this.#combine();
    });
    monitor.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    if (this.#snapshot) this.#combine();
    return undefined;
  }

  /** Servers that never started are tried again until they answer. */
  #armRetry(): void {
    clearTimeout(this.#retry);
    if (this.#closed || this.#servers.every((s) => s.monitor)) return;
    this.#retry = setTimeout(() => {
      for (const server of this.#servers) void this.#startServer(server);
      this.#armRetry();
    }, RESTART_AFTER_MS);
    this.#retry.unref();
  }

  /** Recombines from the servers that answer now; a change of the combined state is a `change`. */
  #combine = (): void => {
    if (this.#closed) return;
    const snapshots = this.#servers.map((s) =>
      s.monitor && s.monitor.unreachableSince === undefined ? s.monitor.snapshot() : undefined,
    );
    const combined = combineSnapshots(snapshots, this.#quorum);
    if (!combined) {
      if (this.#unreachableSince === undefined) {
        this.#unreachableSince = Date.now();
        const answering = snapshots.filter(Boolean).length;
        this.emit('unreachable', {
          since: this.#unreachableSince,
          error: new Error(`${answering} of ${this.#servers.length} deployments answer; a quorum is ${this.#quorum}`),
        });
      }
      return;
    }
    const since = this.#unreachableSince;
    if (since !== undefined) {
      this.#unreachableSince = undefined;
      this.emit('reachable', { since, downMs: Date.now() - since });
    }
    this.#snapshot = combined;
    const digest = JSON.stringify([
      combined.activeCount,
      combined.activeGoal,
      combined.members.map((m) => [m.id, m.weight, m.rank, m.state, m.epoch]),
    ]);
    if (digest !== this.#digest) {
      const first = this.#digest === '';
      this.#digest = digest;
      if (!first) this.emit('change', combined);
    }
  };

  /**
   * Each server logs its own copy of a transition (its own id and time): a `transition` event
   * is emitted once, when Q servers logged copies that say the same within DEDUP_WINDOW_MS, with
   * those servers. A transition fewer than Q log (a partial grant released at once) is not one
   * the group made.
   */
  #transition(index: number, t: Transition): void {
    if (this.#closed) return;
    const key = transitionKey(t);
    let seen = this.#recent.find(
      (s) => s.key === key && !s.servers.includes(index) && Math.abs(t.time - s.time) <= DEDUP_WINDOW_MS,
    );
    if (!seen) {
      seen = { key, time: t.time, servers: [], emitted: false, transition: t };
      this.#recent.push(seen);
      if (this.#recent.length > RECENT_TRANSITIONS) this.#recent.shift();
    }
    seen.servers.push(index);
    if (!seen.emitted && seen.servers.length >= this.#quorum) {
      seen.emitted = true;
      const merged: QuorumTransition = { ...seen.transition, servers: [...seen.servers].sort((a, b) => a - b) };
      this.emit('transition', merged);
    }
  }

  #onAbort = (): void => {
    void this.close();
  };

  async #close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    for (const wake of this.#wakers) wake();
    this.#wakers.clear();
    await Promise.all(this.#started().map((m) => m.close()));
  }
}
