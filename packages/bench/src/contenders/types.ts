/** The systems compared. */
export type ContenderKind = 'understudy' | 'redlock' | 'mutex' | 'semaphore' | 'etcd';

/** A Redis with failover: the contender connects through Sentinel or to a Cluster instead of `redisUrl`. */
export type ContenderTopology =
  | {
      kind: 'sentinel';
      sentinels: { host: string; port: number }[];
      name: string;
      /** ioredis `natMap`: the servers' addresses as Sentinel names them → a proxy in front of each (a slow link). */
      natMap?: Record<string, { host: string; port: number }>;
    }
  | { kind: 'cluster'; nodes: { host: string; port: number }[] };

/** How a contender process is set up (passed as JSON on its command line). */
export interface ContenderConfig {
  kind: ContenderKind;
  /** Group, lock or election name. */
  key: string;
  redisUrl: string;
  /** Quorum mode (DESIGN §9): K independent servers; understudy joins all, redlock locks on all. */
  redisUrls?: string[];
  /** Connect through Sentinel or to a Cluster rather than to `redisUrl`. */
  topology?: ContenderTopology;
  /** understudy: `durability` of the member (default 'async'). */
  durability?: 'async' | 'replicated';
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
