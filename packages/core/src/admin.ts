import { withConnection } from './connections/pool.js';
import type { RedisSource } from './connections/settings.js';
import { DEFAULT_PREFIX, type GroupKeys, groupKeys } from './keys.js';
import { validateActiveGoal, validateGroupName, validatePrefix, validateRedisSource } from './options.js';
import { scripts } from './scripts.js';

export interface GroupAdminOptions {
  redis: RedisSource;
  group: string;
  prefix?: string;
  /** How long to wait for Redis, in ms (default 5000). */
  timeout?: number;
}

export interface SetActiveGoalOptions extends GroupAdminOptions {
  activeGoal: number;
}

function keysOf(options: GroupAdminOptions): GroupKeys {
  validateRedisSource(options.redis);
  return groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
}

/**
 * The operator's change of a group's active goal. Members follow at once: a raised goal
 * activates the next ranked members; a lowered one demotes the lowest-ranked actives first.
 */
export async function setActiveGoal(options: SetActiveGoalOptions): Promise<{ version: number; previous: number }> {
  const keys = keysOf(options);
  const activeGoal = validateActiveGoal(options.activeGoal);
  return withConnection(options.redis, options.timeout ?? 5000, `set the active goal of group ${keys.group}`, (c) =>
    scripts.set_goal(c, keys, { channel: keys.events, activeGoal }),
  );
}

/** Deletes a group that has no live members: its parameters, ranking and transition log. */
export async function forgetGroup(options: GroupAdminOptions): Promise<{ deletedKeys: number }> {
  const keys = keysOf(options);
  return withConnection(options.redis, options.timeout ?? 5000, `forget group ${keys.group}`, async (c) => ({
    deletedKeys: await scripts.forget(c, keys, {}),
  }));
}
