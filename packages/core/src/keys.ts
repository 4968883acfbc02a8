/** The Redis keys of one group. Every key carries the hash tag `{<group>}`: a group lives in one Cluster slot. */
export interface GroupKeys {
  readonly group: string;
  readonly config: string;
  readonly members: string;
  readonly leases: string;
  readonly rank: string;
  readonly slots: string;
  readonly log: string;
  /** Stream: the group feed, every published message (DESIGN §10). */
  readonly feed: string;
  /** Hash: slot index → id of the last feed message that slot's holders committed. */
  readonly commits: string;
  /** Pub/sub channel for change announcements (not a key). */
  readonly events: string;
  /** The six keys every member script takes first, in the order its header lists them. */
  readonly scriptKeys: readonly string[];
  heartbeat(memberId: string): string;
}

export const DEFAULT_PREFIX = 'understudy';

export function groupKeys(group: string, prefix: string = DEFAULT_PREFIX): GroupKeys {
  const base = `${prefix}:{${group}}:`;
  const keys = {
    config: `${base}config`,
    members: `${base}members`,
    leases: `${base}leases`,
    rank: `${base}rank`,
    slots: `${base}slots`,
    log: `${base}log`,
  };
  return Object.freeze({
    group,
    ...keys,
    feed: `${base}feed`,
    commits: `${base}commits`,
    events: `${base}events`,
    scriptKeys: Object.freeze([keys.config, keys.members, keys.leases, keys.rank, keys.slots, keys.log]),
    heartbeat: (memberId: string) => `${base}hb:${memberId}`,
  });
}
