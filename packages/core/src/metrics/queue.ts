import type { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { QueueMonitor } from '../queue/monitor.js';
import type { QueueAdvisory, QueueSnapshot, TaskSettled, TaskStarted } from '../queue/types.js';
import type { QueueWorker } from '../queue/worker.js';
import { MetricDefinitions } from './define.js';

/** Seconds: a task waits a few round trips while a worker has room, and up to minutes when none has. */
const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds: handlers run from milliseconds to their completeTime (30 s by default). */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What queue monitors report: the queue as a whole, as Redis holds it. */
export class QueueMetrics {
  readonly #depth: Gauge<'queue'>;
  readonly #inFlight: Gauge<'queue'>;
  readonly #dead: Gauge<'queue'>;
  readonly #workers: Gauge<'queue'>;
  readonly #capacity: Gauge<'queue'>;
  readonly #quarantined: Gauge<'queue'>;
  readonly #readFailures: Counter<'queue'>;

  constructor(registry: Registry, prefix: string) {
    const define = new MetricDefinitions(registry, prefix);
    this.#depth = define.gauge('queue_depth', 'Tasks waiting: never delivered, or waiting for re-delivery', ['queue']);
    this.#inFlight = define.gauge('queue_in_flight', 'Tasks delivered to a worker and not completed yet', ['queue']);
    this.#dead = define.gauge('queue_dead_letters', "Dead letters kept in the queue's dead-letter stream", ['queue']);
    this.#workers = define.gauge('queue_live_workers', 'Workers whose lease holds', ['queue']);
    this.#capacity = define.gauge('queue_capacity', 'Tasks the live workers may hold at once (sum of capacities)', [
      'queue',
    ]);
    this.#quarantined = define.gauge('queue_quarantined', '1 while nothing is dispatched after lost state, else 0', [
      'queue',
    ]);
    this.#readFailures = define.counter(
      'queue_monitor_read_failures_total',
      'Reads of the queue by the monitor that failed (it retries)',
      ['queue'],
    );
  }

  instrument(monitor: QueueMonitor): () => void {
    const queue = monitor.queue;
    const gauges = [this.#depth, this.#inFlight, this.#dead, this.#workers, this.#capacity, this.#quarantined];
    const onChange = (s: QueueSnapshot) => {
      this.#depth.set({ queue }, s.depth);
      this.#inFlight.set({ queue }, s.inFlight);
      this.#dead.set({ queue }, s.dead);
      this.#workers.set({ queue }, s.workers.length);
      this.#capacity.set(
        { queue },
        s.workers.reduce((sum, w) => sum + w.capacity, 0),
      );
      this.#quarantined.set({ queue }, s.quarantineUntil > 0 ? 1 : 0);
    };
    const onError = () => this.#readFailures.inc({ queue });
    onChange(monitor.snapshot());
    monitor.on('change', onChange);
    monitor.on('error', onError);
    return () => {
      monitor.off('change', onChange);
      monitor.off('error', onError);
      for (const gauge of gauges) gauge.remove({ queue });
    };
  }
}

/** What the workers of this process report about the tasks they run. */
export class WorkerMetrics {
  readonly #wait: Histogram<'queue'>;
  readonly #redeliveries: Counter<'queue'>;
  readonly #duration: Histogram<'queue'>;
  readonly #tasks: Counter<'queue' | 'outcome'>;
  readonly #advisories: Counter<'queue' | 'code'>;

  constructor(registry: Registry, prefix: string) {
    const define = new MetricDefinitions(registry, prefix);
    this.#wait = define.histogram(
      'queue_task_wait_seconds',
      "Redis time from a task's enqueue to its first delivery, at workers of this process (the handler starts one inbox read later)",
      ['queue'],
      WAIT_BUCKETS,
    );
    this.#redeliveries = define.counter(
      'queue_redeliveries_total',
      'Deliveries after the first (the task expired or its worker was lost) started at workers of this process',
      ['queue'],
    );
    this.#duration = define.histogram(
      'queue_task_duration_seconds',
      'Handler time of the tasks run by workers of this process, whatever their outcome',
      ['queue'],
      DURATION_BUCKETS,
    );
    this.#tasks = define.counter(
      'queue_tasks_total',
      'Deliveries that ended at workers of this process, by outcome (completed, failed, stale, unconfirmed)',
      ['queue', 'outcome'],
    );
    this.#advisories = define.counter(
      'queue_advisories_total',
      'Advisories raised by workers of this process, by code (DEAD_LETTER, LEASE_LOST, QUARANTINE, …)',
      ['queue', 'code'],
    );
  }

  instrument(worker: QueueWorker): () => void {
    const queue = worker.queue;
    const onStart = (t: TaskStarted) => {
      if (t.deliveries > 1) this.#redeliveries.inc({ queue });
      else this.#wait.observe({ queue }, Math.max(0, t.deliveredAt - t.enqueuedAt) / 1000);
    };
    const onTask = (t: TaskSettled) => {
      this.#duration.observe({ queue }, t.durationMs / 1000);
      this.#tasks.inc({ queue, outcome: t.outcome });
    };
    const onAdvisory = (a: QueueAdvisory) => this.#advisories.inc({ queue, code: a.code });
    worker.on('start', onStart);
    worker.on('task', onTask);
    worker.on('advisory', onAdvisory);
    return () => {
      worker.off('start', onStart);
      worker.off('task', onTask);
      worker.off('advisory', onAdvisory);
    };
  }
}
