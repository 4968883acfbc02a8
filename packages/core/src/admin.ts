import { type RedisSource, withConnection } from './connections.js';
import { RedisUnavailableError, UnderstudyError } from './errors.js';
import { DEFAULT_PREFIX, groupKeys } from './keys.js';
import { validateActiveGoal, validateGroupName, validatePrefix } from './options.js';
import { runScript } from './scripts.js';

export interface SetActiveGoalOptions {
  redis: RedisSource;
  group: string;
  activeGoal: number;
  prefix?: string;
  /** How long to wait for Redis, in ms (default 5000). */
  timeout?: number;
}

/**
 * The operator's change of a group's active goal. Members follow at once: a raised goal
 * activates the next ranked members; a lowered one demotes the lowest-ranked actives first.
 */
export async function setActiveGoal(options: SetActiveGoalOptions): Promise<{ version: number; previous: number }> {
  const group = validateGroupName(options.group);
  const activeGoal = validateActiveGoal(options.activeGoal);
  const keys = groupKeys(group, validatePrefix(options.prefix ?? DEFAULT_PREFIX));
  return withConnection(options.redis, options.timeout ?? 5000, async (connection) => {
    try {
      const [version, previous] = (await runScript(connection, 'set_goal', keys, [keys.events, activeGoal])) as [
        number,
        number,
      ];
      return { version, previous };
    } catch (error) {
      if (error instanceof UnderstudyError) throw error;
      throw new RedisUnavailableError(`set the active goal of group ${group}: ${String(error)}`, { cause: error });
    }
  });
}
