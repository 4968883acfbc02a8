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
  /** String, quorum mode (DESIGN §9): the highest epoch this server accepted or was told of. */
  readonly floor: string;
  /** Pub/sub channel for change announcements (not a key). */
  readonly events: string;
  /** The six keys every member script takes first, in the order its header lists them. */
  readonly scriptKeys: readonly string[];
  heartbeat(memberId: string): string;
}

export const DEFAULT_PREFIX = 'understudy';

/** The keys every member script takes first, in the order its header lists them. */
const SCRIPT_KEYS = ['config', 'members', 'leases', 'rank', 'slots', 'log'] as const;

export function groupKeys(group: string, prefix: string = DEFAULT_PREFIX): GroupKeys {
  const base = `${prefix}:{${group}}:`;
  const scripted = keysUnder(base, SCRIPT_KEYS);
  return Object.freeze({
    group,
    ...scripted,
    ...keysUnder(base, ['feed', 'commits', 'floor', 'events']),
    scriptKeys: Object.freeze(Object.values(scripted)),
    heartbeat: (memberId: string) => `${base}hb:${memberId}`,
  });
}

/** The key `<base><name>` for each name, in the order given: `{ config: '<base>config', … }`. */
export function keysUnder<const N extends string>(base: string, names: readonly N[]): Record<N, string> {
  return Object.fromEntries(names.map((name) => [name, `${base}${name}`])) as Record<N, string>;
}
