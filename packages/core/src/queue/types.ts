import type { Logger } from 'pino';
import type { RedisSource } from '../connections/settings.js';
import type { JsonValue } from '../feed/encoding.js';
import type { Clock } from '../member/clock.js';

/** What a task carries: a string, a Buffer, or a JSON value; a worker gets back the same kind. */
export type TaskData = string | Buffer | JsonValue;

export interface Task {
  /** The task's id (its Redis stream id), the same on every delivery. */
  id: string;
  data: TaskData;
  /** Which delivery this is: 1 the first time, up to maxDeliveries. */
  deliveries: number;
}

export interface TaskContext {
  /**
   * Aborts when the task may be delivered to another worker: completeTime after its delivery,
   * or when this worker's lease lapses (S4), whichever comes first; also when the queue tells
   * the worker it no longer holds the task.
   */
  signal: AbortSignal;
  /** The delivery's fencing token: it only grows; stamp downstream writes with it. */
  token: number;
}

export type TaskHandler = (task: Task, context: TaskContext) => unknown;

export interface QueueOptions {
  /** An ioredis client or Cluster, a URL, or options. */
  redis: RedisSource;
  queue: string;
  /** Key prefix (default `understudy`). */
  prefix?: string;
}

export interface JoinQueueOptions extends QueueOptions {
  handler: TaskHandler;
  /** 1–65535: the heaviest live worker with free capacity gets the next task (default 1). */
  weight?: number;
  /** Tasks in flight at once, 1–10,000 (default 1). */
  capacity?: number;
  /** ms from delivery until the task is delivered again to another worker (default 30,000). */
  completeTime?: number;
  /** Deliveries before a task moves to the dead letters (default 5). */
  maxDeliveries?: number;
  /** H in ms (default 1000). */
  heartbeatInterval?: number;
  /** A in ms: the worker's lease (default 3000). */
  activationInterval?: number;
  /** Default `host:pid:random`. */
  workerId?: string;
  logger?: Logger;
  /** Aborting it makes the worker leave. */
  signal?: AbortSignal;
  /** ρ: the bound on this machine's clock drift against Redis's (default 0.01). */
  clockDrift?: number;
  /** The monotonic clock (tests inject one). */
  clock?: Clock;
}

export type QueueAdvisoryCode =
  /** A task moved to the dead letters after its last delivery failed or expired. */
  | 'DEAD_LETTER'
  | 'LEASE_LOST'
  | 'REDIS_UNAVAILABLE'
  | 'NO_PERMISSION'
  | 'CORRUPT_STATE'
  /** The queue's state was lost or its server changed: nothing is dispatched until `until`. */
  | 'QUARANTINE';

export interface QueueAdvisory {
  code: QueueAdvisoryCode;
  message: string;
  queue: string;
  worker: string;
  [detail: string]: unknown;
}

/** A delivery whose handler starts at this worker. */
export interface TaskStarted {
  id: string;
  token: number;
  deliveries: number;
  /** Redis ms when the task was enqueued (its stream id's time). */
  enqueuedAt: number;
  /** Redis ms when the queue delivered it to this worker; the handler starts one inbox read later. */
  deliveredAt: number;
}

/** How one delivery ended at this worker. */
export interface TaskSettled {
  id: string;
  token: number;
  deliveries: number;
  /**
   * `completed`: the handler resolved and the queue accepted it. `failed`: the handler threw
   * (the task waits for re-delivery, or went to the dead letters). `stale`: the queue refused
   * the completion (StaleTaskError), the result is dropped. `unconfirmed`: the queue's answer is
   * not known — it could not be told while the worker held its lease (it delivers the task
   * again), or an attempt that timed out may have been accepted before a retry found the task
   * gone — so the task may run again.
   */
  outcome: 'completed' | 'failed' | 'stale' | 'unconfirmed';
  /** The handler's return value (completed), or what it threw (failed), or the StaleTaskError. */
  result?: unknown;
  error?: unknown;
  /** Handler time on the worker's clock (ms). */
  durationMs: number;
}

export type WorkerState = 'working' | 'leaving' | 'left';

export interface WorkerEvents {
  start: [TaskStarted];
  task: [TaskSettled];
  advisory: [QueueAdvisory];
  error: [Error];
  state: [{ from: WorkerState; to: WorkerState }];
}

export interface QueueWorkerSnapshot {
  id: string;
  weight: number;
  capacity: number;
  inFlight: number;
  /** Its lease A (ms). */
  activationInterval: number;
  leaseRemainingMs: number;
  /** Redis ms of its latest delivery (0: none yet). */
  lastReceivedAt: number;
}

/** A task in flight: which worker holds it, and until when. */
export interface QueueTaskSnapshot {
  id: string;
  worker: string;
  /** Which delivery this is (1 the first time). */
  deliveries: number;
  token: number;
  /**
   * ms until the delivery expires and the task goes to another worker; negative once it expired
   * (the next script run on the queue hands it back: a monitor only reads).
   */
  remainingMs: number;
}

export interface QueueSnapshot {
  queue: string;
  /** Redis ms when the queue was first used (0: no such queue: nothing enqueued, no worker ever joined). */
  createdAt: number;
  /** Redis time of the read (ms). */
  serverTime: number;
  /** Tasks waiting: never delivered, or waiting for re-delivery. */
  depth: number;
  inFlight: number;
  /** Dead letters kept (the stream is capped at 100,000). */
  dead: number;
  /** Live workers, heaviest first. */
  workers: QueueWorkerSnapshot[];
  /** Tasks in flight, the soonest to expire first: at most 100 of them (`inFlight` counts all). */
  tasks: QueueTaskSnapshot[];
  /** Redis ms until which nothing is dispatched (0: none). */
  quarantineUntil: number;
  /** Why the latest quarantine began (`lost-state:<keys>`, `server-changed`); '' with none now. */
  quarantineReason: string;
}
