/** The systems compared. */
export type ContenderKind = 'understudy' | 'redlock' | 'mutex' | 'semaphore' | 'etcd';

/** How a contender process is set up (passed as JSON on its command line). */
export interface ContenderConfig {
  kind: ContenderKind;
  /** Group, lock or election name. */
  key: string;
  redisUrl: string;
  /** etcd client URLs, for `etcd`. */
  etcdHosts: string[];
  /** Lease length A (TTL), ms. */
  activationMs: number;
  /** Renewal period H (refresh / extension interval), ms. */
  heartbeatMs: number;
  /** How many may hold at once (understudy's active goal, the semaphore's limit). */
  slots: number;
}

/** One line a contender prints: an event with its hrtime stamp (ms, CLOCK_MONOTONIC). */
export interface ContenderEvent {
  t: number;
  event: 'ready' | 'joining' | 'joined' | 'acquired' | 'released' | 'lost' | 'leaving' | 'left' | 'lease' | 'error';
  member?: string;
  reason?: string;
  /** `lease`: when the lease would lapse without another renewal (hrtime ms). */
  deadline?: number;
  message?: string;
  [field: string]: unknown;
}

export type Emit = (event: ContenderEvent['event'], fields?: Record<string, unknown>) => void;

/** A joined contender: it competes for a slot until it leaves. */
export interface Candidate {
  /** Graceful: a holder stops believing (`released`), gives its slot back, then `left`. */
  leave(): Promise<void>;
}

export type StartCandidate = (
  config: ContenderConfig,
  member: { id: string; weight: number },
  emit: Emit,
) => Promise<Candidate>;
