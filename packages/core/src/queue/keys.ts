import { DEFAULT_PREFIX, keysUnder } from '../keys.js';

/**
 * The Redis keys of one queue. Every key carries the hash tag `{q:<queue>}`: a queue lives in one
 * Cluster slot, and never shares a key with a group (whose tag is `{<group>}`). See docs/keys.md.
 */
export interface QueueKeys {
  readonly queue: string;
  readonly config: string;
  readonly workers: string;
  readonly leases: string;
  readonly order: string;
  readonly deliveries: string;
  readonly tasks: string;
  readonly deadlines: string;
  readonly dead: string;
  /** Pub/sub channel that tells monitors something changed (not a key). */
  readonly events: string;
  /** The eight keys every queue script takes first, in the order its header lists them. */
  readonly scriptKeys: readonly string[];
  /** The list a worker blocks on for its deliveries. */
  inbox(workerId: string): string;
}

/** The keys every queue script takes first, in the order its header lists them. */
const SCRIPT_KEYS = ['config', 'workers', 'leases', 'order', 'deliveries', 'tasks', 'deadlines', 'dead'] as const;

export function queueKeys(queue: string, prefix: string = DEFAULT_PREFIX): QueueKeys {
  const base = `${prefix}:{q:${queue}}:`;
  const scripted = keysUnder(base, SCRIPT_KEYS);
  return Object.freeze({
    queue,
    ...scripted,
    events: `${base}events`,
    scriptKeys: Object.freeze(Object.values(scripted)),
    inbox: (workerId: string) => `${base}inbox:${workerId}`,
  });
}
