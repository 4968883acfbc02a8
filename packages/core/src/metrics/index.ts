import { type Registry, register } from 'prom-client';
import { ConfigError } from '../errors.js';
import type { Member } from '../member/join.js';
import type { Monitor } from '../monitor/group.js';
import type { QueueMonitor } from '../queue/monitor.js';
import type { QueueWorker } from '../queue/worker.js';
import { type Defined, define, type MetricTable } from './define.js';
import { GROUP_METRICS, recordGroup } from './group.js';
import { MEMBER_METRICS, recordMember } from './member.js';
import { QUEUE_METRICS, recordQueue, recordWorker, WORKER_METRICS } from './queue.js';

/**
 * Prometheus metrics for members, queue workers and monitors, through prom-client (an optional peer
 * dependency: only this subpath imports it, and `@understudy/core` never imports this
 * subpath). docs/METRICS.md lists every metric.
 */
export interface MetricsOptions {
  /** Where the metrics are registered (default: prom-client's global registry). */
  registry?: Registry;
  /** Prepended to every metric name (default `understudy_`). */
  prefix?: string;
}

export interface UnderstudyMetrics {
  readonly registry: Registry;
  /**
   * Records a member's renewals, actions, state and advisories from now on. Returns a function
   * that stops recording and removes the member's own series (they go when it leaves, too).
   */
  instrumentMember(member: Member): () => void;
  /**
   * Records a group as a monitor sees it: active members against the goal, transitions,
   * failover and handover durations, from the monitor's first read on. Returns a function
   * that stops recording and removes the group's gauges.
   */
  instrumentMonitor(monitor: Monitor): () => void;
  /**
   * Records a queue as a queue monitor sees it: depth, tasks in flight, dead letters, live
   * workers and their capacity, quarantine. Returns a function that stops recording and
   * removes the queue's gauges.
   */
  instrumentQueueMonitor(monitor: QueueMonitor): () => void;
  /**
   * Records a worker's tasks from now on: enqueue → delivery wait, re-deliveries, handler
   * durations, outcomes and advisories. Returns a function that stops recording.
   */
  instrumentWorker(worker: QueueWorker): () => void;
}

export const METRICS_DEFAULTS = Object.freeze({ prefix: 'understudy_' });

/** The same registry and prefix get the same metrics: prom-client refuses a name twice. */
const created = new WeakMap<Registry, Map<string, UnderstudyMetrics>>();

/** The metrics of a registry (one set per registry and prefix). */
export function createMetrics(options: MetricsOptions = {}): UnderstudyMetrics {
  const registry = options.registry ?? register;
  const prefix = options.prefix ?? METRICS_DEFAULTS.prefix;
  if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*$/.test(prefix)) {
    throw new ConfigError('prefix', prefix, 'must be letters, digits, _ or : and not start with a digit');
  }
  let byPrefix = created.get(registry);
  if (!byPrefix) {
    byPrefix = new Map();
    created.set(registry, byPrefix);
  }
  let metrics = byPrefix.get(prefix);
  if (!metrics) {
    metrics = new Metrics(registry, prefix);
    byPrefix.set(prefix, metrics);
  }
  return metrics;
}

/** Registers each kind of metrics (members, groups, workers, queues) when first used, so a scrape lists only what is recorded. */
class Metrics implements UnderstudyMetrics {
  readonly #defined = new Map<object, unknown>();

  constructor(
    readonly registry: Registry,
    readonly prefix: string,
  ) {}

  instrumentMember(member: Member): () => void {
    return recordMember(this.#define(MEMBER_METRICS), member);
  }

  instrumentMonitor(monitor: Monitor): () => void {
    return recordGroup(this.#define(GROUP_METRICS), monitor);
  }

  instrumentQueueMonitor(monitor: QueueMonitor): () => void {
    return recordQueue(this.#define(QUEUE_METRICS), monitor);
  }

  instrumentWorker(worker: QueueWorker): () => void {
    return recordWorker(this.#define(WORKER_METRICS), worker);
  }

  /** The metrics of one table, registered on first use. */
  #define<T extends MetricTable>(table: T): Defined<T> {
    if (!this.#defined.has(table)) this.#defined.set(table, define(table, this.registry, this.prefix));
    return this.#defined.get(table) as Defined<T>;
  }
}
