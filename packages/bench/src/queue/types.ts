/** A queue system as the benchmark runs it: understudy's queue, or BullMQ with some lock settings. */
export interface QueueSystem {
  /** Stable key in results and tables. */
  key: 'understudy' | 'bullmq-tuned' | 'bullmq-default';
  kind: 'understudy' | 'bullmq';
  label: string;
  /** understudy: the worker's intervals (ms). */
  understudy?: { activationInterval: number; heartbeatInterval: number; completeTime: number };
  /** BullMQ: the Worker's lock options (ms); omitted ones keep BullMQ's defaults. */
  bullmq?: { lockDuration?: number; stalledInterval?: number };
  /** The longest a task held by a dead or stalled worker waits before it is delivered again, ms. */
  redeliveryBoundMs: number;
  /** How the bound above follows from the settings. */
  settingsText: string;
}

/** What a task carries: when it was enqueued (hrNow in the producer). */
export interface TaskData {
  t: number;
}

/** How a worker process handles every task it gets. */
export type HandlerMode =
  /** Await `taskMs` (0: return at once). */
  | { kind: 'work'; taskMs: number }
  /** Hold the task (await) until the handler's signal aborts or `holdMs` passed. */
  | { kind: 'hold'; holdMs: number }
  /**
   * Block the event loop for `stallMs`, then read the ledger (one round trip), then — unless
   * `checkSignal` finds the handler's signal aborted — run the side effect.
   */
  | { kind: 'stall'; stallMs: number; checkSignal: boolean };

/** The `join` command: which queue, as which worker, handling tasks how. */
export interface WorkerPlan {
  system: QueueSystem;
  queue: string;
  workerId: string;
  mode: HandlerMode;
  /** `each`: an event per task start and end; `progress`: counts every 50 ms (throughput runs). */
  report: 'each' | 'progress';
  /** Count every run of a handler's side effect in this Redis (a `ran:<queue>:<task>` counter). */
  ledgerUrl?: string;
}

/** How the benchmark reaches a worker process's Redis. */
export interface WorkerProcessConfig {
  redisUrl: string;
}

/** One line a worker process prints (hrtime ms, comparable across processes). */
export interface QueueWorkerEvent {
  t: number;
  event: 'ready' | 'joined' | 'start' | 'effect' | 'skipped' | 'settled' | 'progress' | 'left' | 'error';
  worker?: string;
  task?: string;
  /** start: the task's enqueue stamp (hrNow in the producer). */
  sent?: number;
  /** settled: what the queue made of the handler's end. */
  outcome?: string;
  /** progress: tasks completed so far, and when the first started and the last completed. */
  completed?: number;
  first?: number;
  last?: number;
  /** progress: deliveries that ended other than completed, by outcome. */
  outcomes?: Record<string, number>;
  message?: string;
}

/** What the harness needs from either library's worker. */
export interface JoinedWorker {
  leave(): Promise<void>;
}

/** The library-independent part of a task's handling. */
export type RunTask = (id: string, data: TaskData, signal: AbortSignal | undefined) => Promise<void>;
/** How the queue ended a delivery: `completed` when it accepted the completion. */
export type Settle = (id: string, outcome: string) => void;
export type Emit = (event: QueueWorkerEvent['event'], fields?: Omit<QueueWorkerEvent, 't' | 'event'>) => void;

export type JoinWorker = (
  plan: WorkerPlan,
  redisUrl: string,
  run: RunTask,
  settle: Settle,
  emit: Emit,
) => Promise<JoinedWorker>;
