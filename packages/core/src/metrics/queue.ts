import type { QueueMonitor } from '../queue/monitor.js';
import type { QueueAdvisory, QueueSnapshot, TaskSettled, TaskStarted } from '../queue/types.js';
import type { QueueWorker } from '../queue/worker.js';
import { counter, type Defined, gauge, histogram, listen } from './define.js';

/** Seconds: a task waits a few round trips while a worker has room, and up to minutes when none has. */
const WAIT_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];
/** Seconds: handlers run from milliseconds to their completeTime (30 s by default). */
const DURATION_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

/** What queue monitors report: the queue as a whole, as Redis holds it. */
export const QUEUE_METRICS = {
  depth: gauge('queue_depth', 'Tasks waiting: never delivered, or waiting for re-delivery', ['queue']),
  inFlight: gauge('queue_in_flight', 'Tasks delivered to a worker and not completed yet', ['queue']),
  dead: gauge('queue_dead_letters', "Dead letters kept in the queue's dead-letter stream", ['queue']),
  workers: gauge('queue_live_workers', 'Workers whose lease holds', ['queue']),
  capacity: gauge('queue_capacity', 'Tasks the live workers may hold at once (sum of capacities)', ['queue']),
  quarantined: gauge('queue_quarantined', '1 while nothing is dispatched after lost state, else 0', ['queue']),
  readFailures: counter(
    'queue_monitor_read_failures_total',
    'Reads of the queue by the monitor that failed (it retries)',
    ['queue'],
  ),
};

/** Records a queue as the queue monitor sees it; the function returned stops and removes its gauges. */
export function recordQueue(metrics: Defined<typeof QUEUE_METRICS>, monitor: QueueMonitor): () => void {
  const queue = monitor.queue;
  const gauges = [
    metrics.depth,
    metrics.inFlight,
    metrics.dead,
    metrics.workers,
    metrics.capacity,
    metrics.quarantined,
  ];
  const onChange = (s: QueueSnapshot) => {
    metrics.depth.set({ queue }, s.depth);
    metrics.inFlight.set({ queue }, s.inFlight);
    metrics.dead.set({ queue }, s.dead);
    metrics.workers.set({ queue }, s.workers.length);
    metrics.capacity.set(
      { queue },
      s.workers.reduce((sum, w) => sum + w.capacity, 0),
    );
    metrics.quarantined.set({ queue }, s.quarantineUntil > 0 ? 1 : 0);
  };
  onChange(monitor.snapshot());
  const stop = listen(monitor, { change: onChange, error: () => metrics.readFailures.inc({ queue }) });
  return () => {
    stop();
    for (const series of gauges) series.remove({ queue });
  };
}

/** What the workers of this process report about the tasks they run. */
export const WORKER_METRICS = {
  wait: histogram(
    'queue_task_wait_seconds',
    "Redis time from a task's enqueue to its first delivery, at workers of this process (the handler starts one inbox read later)",
    ['queue'],
    WAIT_BUCKETS,
  ),
  redeliveries: counter(
    'queue_redeliveries_total',
    'Deliveries after the first (the task expired or its worker was lost) started at workers of this process',
    ['queue'],
  ),
  duration: histogram(
    'queue_task_duration_seconds',
    'Handler time of the tasks run by workers of this process, whatever their outcome',
    ['queue'],
    DURATION_BUCKETS,
  ),
  tasks: counter(
    'queue_tasks_total',
    'Deliveries that ended at workers of this process, by outcome (completed, failed, stale, unconfirmed)',
    ['queue', 'outcome'],
  ),
  advisories: counter(
    'queue_advisories_total',
    'Advisories raised by workers of this process, by code (DEAD_LETTER, LEASE_LOST, QUARANTINE, …)',
    ['queue', 'code'],
  ),
};

/** Records a worker's tasks from now on; the function returned stops. */
export function recordWorker(metrics: Defined<typeof WORKER_METRICS>, worker: QueueWorker): () => void {
  const queue = worker.queue;
  return listen(worker, {
    start: (t: TaskStarted) => {
      if (t.deliveries > 1) metrics.redeliveries.inc({ queue });
      else metrics.wait.observe({ queue }, Math.max(0, t.deliveredAt - t.enqueuedAt) / 1000);
    },
    task: (t: TaskSettled) => {
      metrics.duration.observe({ queue }, t.durationMs / 1000);
      metrics.tasks.inc({ queue, outcome: t.outcome });
    },
    advisory: (a: QueueAdvisory) => metrics.advisories.inc({ queue, code: a.code }),
  });
}
