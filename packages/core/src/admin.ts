import { withConnection } from './connections/pool.js';
import type { RedisSource } from './connections/settings.js';
import { DEFAULT_PREFIX, type GroupKeys, groupKeys } from './keys.js';
import { validateActiveGoal, validateGroupName, validatePrefix, validateRedisSource } from './options.js';
import { type QuorumGoalChange, setQuorumGoal } from './quorum-admin.js';
import { type LoadedLibrary, loadLibraries } from './script-call.js';
import { scripts } from './scripts.js';

export type { LoadedLibrary } from './script-call.js';

export interface GroupAdminOptions {
  redis: RedisSource;
  group: string;
  prefix?: string;
  /** How long to wait for Redis, in ms (default 5000). */
  timeout?: number;
}

export interface SetActiveGoalOptions extends Omit<GroupAdminOptions, 'redis'> {
  /** One deployment, or the K of a group in quorum mode (DESIGN §9). */
  redis: RedisSource | readonly RedisSource[];
  activeGoal: number;
}

function keysOf(options: GroupAdminOptions): GroupKeys {
  validateRedisSource(options.redis);
  return groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
}

/**
 * The operator's change of a group's active goal. Members follow at once: a raised goal
 * activates the next ranked members; a lowered one demotes the lowest-ranked actives first.
 * In quorum mode (`redis` an array of K deployments) the change is sent to all K and takes
 * effect once Q accepted it; the reply says per server what it had and whether it accepted,
 * and fewer than Q accepting is an error naming each server's answer.
 */
export async function setActiveGoal(
  options: SetActiveGoalOptions & { redis: readonly RedisSource[] },
): Promise<QuorumGoalChange>;
export async function setActiveGoal(
  options: SetActiveGoalOptions & { redis: RedisSource },
): Promise<{ version: number; previous: number }>;
export async function setActiveGoal(
  options: SetActiveGoalOptions,
): Promise<{ version: number; previous: number } | QuorumGoalChange>;
export async function setActiveGoal(
  options: SetActiveGoalOptions,
): Promise<{ version: number; previous: number } | QuorumGoalChange> {
  const { redis } = options;
  const activeGoal = validateActiveGoal(options.activeGoal);
  if (isQuorum(redis)) {
    const keys = groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
    return setQuorumGoal(redis, keys, options.timeout ?? 5000, activeGoal);
  }
  const keys = keysOf({ ...options, redis });
  return withConnection(redis, options.timeout ?? 5000, `set the active goal of group ${keys.group}`, (c) =>
    scripts.set_goal(c, keys, { channel: keys.events, activeGoal }),
  );
}

function isQuorum(redis: RedisSource | readonly RedisSource[]): redis is readonly RedisSource[] {
  return Array.isArray(redis);
}

/** Deletes a group that has no live members: its parameters, ranking and transition log. */
export async function forgetGroup(options: GroupAdminOptions): Promise<{ deletedKeys: number }> {
  const keys = keysOf(options);
  return withConnection(options.redis, options.timeout ?? 5000, `forget group ${keys.group}`, async (c) => ({
    deletedKeys: await scripts.forget(c, keys, {}),
  }));
}

export interface LoadFunctionsOptions {
  redis: RedisSource;
  /** How long to wait for Redis, in ms (default 5000). */
  timeout?: number;
}

/**
 * Loads understudy's function libraries (the group's scripts and the queue's) on the server,
 * or on every master of a Cluster, with the caller's user: the operator's step where members,
 * workers and monitors run under users that may not load functions (`understudy acl`). A
 * library already there is left as it is. Members load it themselves where their user may
 * (`FUNCTION LOAD`), and run the scripts with EVALSHA where nobody loaded it.
 */
export async function loadFunctions(options: LoadFunctionsOptions): Promise<LoadedLibrary[]> {
  validateRedisSource(options.redis);
  return withConnection(options.redis, options.timeout ?? 5000, "load understudy's function libraries", (c) =>
    loadLibraries(c),
  );
}
