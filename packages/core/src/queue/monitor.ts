import { EventEmitter } from 'node:events';
import type { Cluster, Redis } from 'ioredis';
import { type Logger, pino } from 'pino';
import { redisUser } from '../connections/diagnosis.js';
import { acquireLink, type Link } from '../connections/pool.js';
import { CorruptStateError } from '../errors.js';
import { classify, describe } from '../failures.js';
import { DEFAULT_PREFIX } from '../keys.js';
import { validateGroupName, validatePrefix, validateRedisSource } from '../options.js';
import { readScript } from '../scripts.js';
import { type QueueKeys, queueKeys } from './keys.js';
import type { QueueOptions, QueueSnapshot, QueueTaskSnapshot, QueueWorkerSnapshot } from './types.js';

export interface MonitorQueueOptions extends QueueOptions {
  logger?: Logger;
  /** Aborting it closes the monitor. */
  signal?: AbortSignal;
}

export interface QueueMonitorEvents {
  change: [QueueSnapshot];
  error: [Error];
}

/** How long a read may take, and the least time between two reads (ms). */
const READ_TIMEOUT_MS = 2000;
const MIN_READ_GAP_MS = 20;
/** With no worker and no message, the monitor still reads this often (a change it missed). */
const IDLE_READ_MS = 5000;

/** Tasks in flight a read lists (the soonest to expire first). */
export const LISTED_TASKS = 100;

/** Reads a queue's state with the read-only observe script (lua/queue/observe.lua). */
export async function readQueue(connection: Redis | Cluster, keys: QueueKeys): Promise<QueueSnapshot> {
  const read = await readScript(connection, 'queue/observe', keys, { limit: LISTED_TASKS });
  const serverNow = read.now;
  const quarantineUntil = read.quarantineUntil > serverNow ? read.quarantineUntil : 0;
  const deadlines = new Map(read.leases.map(([id, deadline]) => [id, Number(deadline)]));
  const workers: QueueWorkerSnapshot[] = [];
  for (const [id, json] of read.workers) {
    const leaseRemainingMs = (deadlines.get(id) ?? 0) - serverNow;
    if (leaseRemainingMs <= 0) continue; // lapsed: not live, whether or not a script removed it yet
    const record = parseRecord(keys, keys.workers, id, json);
    workers.push({
      id,
      weight: Number(record.w),
      capacity: Number(record.c),
      inFlight: Number(record.f),
      activationInterval: Number(record.a),
      leaseRemainingMs,
      lastReceivedAt: Number(record.r ?? 0),
    });
  }
  workers.sort((a, b) => b.weight - a.weight || a.id.localeCompare(b.id));
  const tasks: QueueTaskSnapshot[] = [];
  for (const [i, [id, deadline]] of read.listed.entries()) {
    const delivery = read.deliveries[i];
    if (delivery === null || delivery === undefined) continue; // a deadline without its record: lost state, the next script rebuilds
    const record = parseRecord(keys, keys.deliveries, id, delivery);
    tasks.push({
      id,
      worker: String(record.w),
      deliveries: Number(record.n),
      token: Number(record.k),
      remainingMs: Number(deadline) - serverNow,
    });
  }
  return {
    queue: keys.queue,
    createdAt: read.createdAt,
    serverTime: serverNow,
    depth: Math.max(0, read.length - read.inFlight),
    inFlight: read.inFlight,
    dead: read.dead,
    workers,
    tasks,
    quarantineUntil,
    quarantineReason: quarantineUntil > 0 ? read.quarantineReason : '',
  };
}

/** A JSON record of the workers' or the deliveries' hash. */
function parseRecord(keys: QueueKeys, key: string, field: string, raw: unknown): Record<string, unknown> {
  try {
    const record: unknown = JSON.parse(String(raw));
    if (record !== null && typeof record === 'object' && !Array.isArray(record))
      return record as Record<string, unknown>;
  } catch (error) {
    throw new CorruptStateError(`queue ${keys.queue}`, key, `field ${field} is not a JSON object`, { cause: error });
  }
  throw new CorruptStateError(`queue ${keys.queue}`, key, `field ${field} is not a JSON object`);
}

/** What a change compares: everything but the times that move with every read and renewal. */
function fingerprint(s: QueueSnapshot): string {
  return JSON.stringify({
    ...s,
    serverTime: 0,
    workers: s.workers.map(({ leaseRemainingMs: _, ...w }) => w),
    tasks: s.tasks.map(({ remainingMs: _, ...t }) => t),
  });
}

/**
 * A read-only observer of a queue: reads on every change a script announces (coalesced), and
 * when the next lease would lapse, so a worker that dies is reported without anyone writing.
 * Runs under a Redis user that may only read the queue's keys (aclRules `queueMonitor`).
 */
export class QueueMonitor extends EventEmitter<QueueMonitorEvents> {
  readonly queue: string;
  readonly #options: MonitorQueueOptions;
  readonly #keys: QueueKeys;
  readonly #log: Logger;
  #link: Link | undefined;
  #snapshot: QueueSnapshot;
  #fingerprint = '';
  #reading = false;
  #readAgain = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  /** Use `monitorQueue()`. */
  constructor(options: MonitorQueueOptions) {
    super();
    this.queue = validateGroupName(options.queue, 'queue');
    validateRedisSource(options.redis);
    this.#options = options;
    this.#keys = queueKeys(this.queue, validatePrefix(options.prefix ?? DEFAULT_PREFIX));
    this.#snapshot = {
      queue: this.queue,
      createdAt: 0,
      serverTime: 0,
      depth: 0,
      inFlight: 0,
      dead: 0,
      workers: [],
      tasks: [],
      quarantineUntil: 0,
      quarantineReason: '',
    };
    this.#log =
      options.logger?.child({ component: 'understudy-queue-monitor', queue: this.queue }) ?? pino({ enabled: false });
  }

  /** The latest state read. */
  snapshot(): QueueSnapshot {
    return this.#snapshot;
  }

  /** @internal Connects, subscribes and reads once; called by `monitorQueue`. */
  async start(): Promise<void> {
    this.#options.signal?.throwIfAborted();
    try {
      this.#link = await acquireLink(this.#options.redis, READ_TIMEOUT_MS, READ_TIMEOUT_MS);
      await this.#link.subscriber.subscribe(this.#keys.events, this.#onMessage, this.#onMessage, READ_TIMEOUT_MS);
      this.#snapshot = await readQueue(this.#link.lease, this.#keys);
      this.#fingerprint = fingerprint(this.#snapshot);
    } catch (error) {
      this.#release();
      throw classify(error, { operation: `monitor queue ${this.queue}`, user: redisUser(this.#options.redis) });
    }
    this.#options.signal?.addEventListener('abort', this.#onAbort, { once: true });
    this.#arm(this.#snapshot);
  }

  /** Stops observing. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#options.signal?.removeEventListener('abort', this.#onAbort);
    this.#release();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #onAbort = (): void => {
    void this.close();
  };

  #onMessage = (): void => {
    void this.#read();
  };

  #release(): void {
    clearTimeout(this.#timer);
    const link = this.#link;
    this.#link = undefined;
    if (link) {
      link.subscriber.unsubscribe(this.#keys.events, this.#onMessage, this.#onMessage);
      link.release();
    }
  }

  /** Reads now, or right after the read in flight (announcements coalesce). */
  async #read(): Promise<void> {
    if (this.#reading) {
      this.#readAgain = true;
      return;
    }
    this.#reading = true;
    try {
      do {
        this.#readAgain = false;
        const link = this.#link;
        if (this.#closed || !link) return;
        let snapshot: QueueSnapshot;
        try {
          snapshot = await readQueue(link.lease, this.#keys);
        } catch (error) {
          this.#log.warn({ error: describe(error) }, 'could not read the queue');
          if (this.listenerCount('error') > 0)
            this.emit('error', error instanceof Error ? error : new Error(String(error)));
          this.#arm(undefined);
          return;
        }
        this.#snapshot = snapshot;
        const print = fingerprint(snapshot);
        if (print !== this.#fingerprint) {
          this.#fingerprint = print;
          this.emit('change', snapshot);
        }
        this.#arm(snapshot);
        if (this.#readAgain) await new Promise((resolve) => setTimeout(resolve, MIN_READ_GAP_MS));
      } while (this.#readAgain);
    } finally {
      this.#reading = false;
    }
  }

  /** The next read without a message: when the first lease would lapse, else after a while. */
  #arm(snapshot: QueueSnapshot | undefined): void {
    clearTimeout(this.#timer);
    if (this.#closed) return;
    const leases = snapshot?.workers.map((w) => w.leaseRemainingMs) ?? [];
    const delay = Math.min(IDLE_READ_MS, ...leases.map((ms) => ms + 1));
    this.#timer = setTimeout(() => void this.#read(), Math.max(MIN_READ_GAP_MS, delay));
    this.#timer.unref();
  }
}

/** Starts observing a queue; resolves after the first read. */
export async function monitorQueue(options: MonitorQueueOptions): Promise<QueueMonitor> {
  const monitor = new QueueMonitor(options);
  await monitor.start();
  return monitor;
}
