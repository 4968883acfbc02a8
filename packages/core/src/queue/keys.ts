import { DEFAULT_PREFIX } from '../keys.js';

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

export function queueKeys(queue: string, prefix: string = DEFAULT_PREFIX): QueueKeys {
  const base = `${prefix}:{q:${queue}}:`;
  const keys = {
    config: `${base}config`,
    workers: `${base}workers`,
    leases: `${base}leases`,
    order: `${base}order`,
    deliveries: `${base}deliveries`,
    tasks: `${base}tasks`,
    deadlines: `${base}deadlines`,
    dead: `${base}dead`,
  };
  return Object.freeze({
    queue,
    ...keys,
    events: `${base}events`,
    scriptKeys: Object.freeze(Object.values(keys)),
    inbox: (workerId: string) => `${base}inbox:${workerId}`,
  });
}
