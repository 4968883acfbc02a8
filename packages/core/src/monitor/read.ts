import { Cluster } from 'ioredis';
import { withConnection } from '../connections/pool.js';
import type { RedisSource } from '../connections/settings.js';
import { DEFAULT_PREFIX, groupKeys } from '../keys.js';
import { validateGroupName, validateLostInterval, validatePrefix, validateRedisSource } from '../options.js';
import {
  describeQuorumGroup,
  type QuorumGroupSnapshot,
  type QuorumTransition,
  readQuorumHistory,
} from '../quorum-admin.js';
import { readTransitions, type Transition } from './history.js';
import { type GroupSnapshot, readGroup } from './observe.js';

/** Read-only calls for operators and the command line. */
export interface ReadOptions {
  redis: RedisSource;
  prefix?: string;
  /** How long to wait for Redis, in ms (default 5000). */
  timeout?: number;
}

/** Names of every group on the server (SCAN over the groups' config keys, never KEYS), sorted. */
export async function listGroups(options: ReadOptions): Promise<string[]> {
  // `{*}` also matches a queue's `{q:<queue>}`: a group name has no colon.
  return scanNames(options, 'list groups', '{*}:config', /\{([^}:]*)\}:config$/);
}

/**
 * The names `pattern` captures from the keys of every master that match `<prefix>:<glob>` (SCAN,
 * never KEYS), sorted.
 */
export async function scanNames(options: ReadOptions, what: string, glob: string, pattern: RegExp): Promise<string[]> {
  validateRedisSource(options.redis);
  const prefix = validatePrefix(options.prefix ?? DEFAULT_PREFIX);
  return withConnection(options.redis, options.timeout ?? 5000, what, async (connection) => {
    const nodes = connection instanceof Cluster ? connection.nodes('master') : [connection];
    const names = new Set<string>();
    for (const node of nodes) {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${prefix}:${glob}`, 'COUNT', 1000);
        cursor = next;
        for (const key of keys) {
          const match = pattern.exec(key);
          if (match?.[1]) names.add(match[1]);
        }
      } while (cursor !== '0');
    }
    return [...names].sort();
  });
}

/** One deployment, or the K of a group in quorum mode (DESIGN §9). */
export interface GroupReadOptions extends Omit<ReadOptions, 'redis'> {
  redis: RedisSource | readonly RedisSource[];
  group: string;
}

/**
 * One read of a group: members, ranks, states, epochs, leases. In quorum mode (`redis` an array
 * of K deployments) all K are read at once and the snapshot is what a majority shows (a member
 * active only where Q servers show it the same slot and epoch), with each server's reachability
 * and its own goal, version and active count; fewer than Q answering is an error.
 */
export async function describeGroup(
  options: GroupReadOptions & { redis: readonly RedisSource[]; lostInterval?: number },
): Promise<QuorumGroupSnapshot>;
export async function describeGroup(
  options: GroupReadOptions & { redis: RedisSource; lostInterval?: number },
): Promise<GroupSnapshot>;
export async function describeGroup(
  options: GroupReadOptions & { lostInterval?: number },
): Promise<GroupSnapshot | QuorumGroupSnapshot>;
export async function describeGroup(
  options: GroupReadOptions & { lostInterval?: number },
): Promise<GroupSnapshot | QuorumGroupSnapshot> {
  const { redis } = options;
  if (options.lostInterval !== undefined) validateLostInterval(options.lostInterval);
  const keys = groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
  if (Array.isArray(redis)) return describeQuorumGroup(redis, keys, options.timeout ?? 5000, options.lostInterval);
  const source = redis as RedisSource;
  validateRedisSource(source);
  return withConnection(
    source,
    options.timeout ?? 5000,
    `describe group ${keys.group}`,
    (c) => readGroup(c, keys, options.lostInterval),
    keys.group,
  );
}

/**
 * The last `count` transitions of a group (default 50), oldest first. In quorum mode the K
 * servers' logs are merged: copies of one transition count once, listing the servers that
 * logged it (`servers`).
 */
export async function readHistory(
  options: GroupReadOptions & { redis: readonly RedisSource[]; count?: number },
): Promise<QuorumTransition[]>;
export async function readHistory(
  options: GroupReadOptions & { redis: RedisSource; count?: number },
): Promise<Transition[]>;
export async function readHistory(options: GroupReadOptions & { count?: number }): Promise<Transition[]>;
export async function readHistory(options: GroupReadOptions & { count?: number }): Promise<Transition[]> {
  const { redis } = options;
  const keys = groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
  if (Array.isArray(redis)) return readQuorumHistory(redis, keys, options.timeout ?? 5000, options.count ?? 50);
  const source = redis as RedisSource;
  validateRedisSource(source);
  return withConnection(
    source,
    options.timeout ?? 5000,
    `read the history of group ${keys.group}`,
    (c) => readTransitions(c, keys, options.count ?? 50),
    keys.group,
  );
}
