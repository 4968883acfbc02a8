import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { Cluster } from 'ioredis';
import { ConfigError } from '../errors.js';
import { DEFAULT_PREFIX, type GroupKeys, groupKeys } from '../keys.js';
import {
  commandTimeoutFor,
  MEMBER_DEFAULTS,
  validateActiveGoal,
  validateClockDrift,
  validateDurability,
  validateGroupName,
  validateHandler,
  validateIntervals,
  validateLeaseBudget,
  validateMemberId,
  validatePrefix,
  validateQuorumSources,
  validateRedisSource,
  validateWeight,
} from '../options.js';
import { type Clock, lagMonitor, monotonicClock } from './clock.js';
import type { JoinOptions } from './types.js';

/** A member's settings: its options validated, with the defaults filled in. */
export interface MemberSettings {
  group: string;
  id: string;
  keys: GroupKeys;
  weight: number;
  activeGoal: number;
  heartbeatInterval: number;
  preparationInterval: number;
  activationInterval: number;
  clockDrift: number;
  clock: Clock;
  durability: 'async' | 'replicated';
}

/** Validates a member's options up front: every bad input is a ConfigError that names it. */
export function memberSettings(options: JoinOptions): MemberSettings {
  const group = validateGroupName(options.group);
  const id = validateMemberId(options.memberId ?? `${hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`);
  const intervals = validateIntervals({
    heartbeatInterval: options.heartbeatInterval ?? MEMBER_DEFAULTS.heartbeatInterval,
    preparationInterval: options.preparationInterval ?? MEMBER_DEFAULTS.preparationInterval,
    activationInterval: options.activationInterval ?? MEMBER_DEFAULTS.activationInterval,
  });
  const settings: MemberSettings = {
    group,
    id,
    keys: groupKeys(group, validatePrefix(options.prefix ?? DEFAULT_PREFIX)),
    weight: validateWeight(options.weight),
    activeGoal: validateActiveGoal(options.activeGoal ?? MEMBER_DEFAULTS.activeGoal),
    ...intervals,
    clockDrift: validateClockDrift(options.clockDrift ?? MEMBER_DEFAULTS.clockDrift),
    durability: validateDurability(options.durability ?? MEMBER_DEFAULTS.durability),
    clock: options.clock ?? monotonicClock,
  };
  validateLeaseBudget(
    intervals,
    settings.clockDrift,
    commandTimeoutFor(intervals.heartbeatInterval),
    lagMonitor.baseMargin,
  );
  if (settings.durability === 'replicated' && options.redis instanceof Cluster) {
    throw new ConfigError(
      'durability',
      'replicated',
      'is not available with Redis Cluster yet (WAIT has no key to route by)',
    );
  }
  if (Array.isArray(options.redis)) validateQuorumOptions(options);
  else validateRedisSource(options.redis);
  validateHandler('onPrepare', options.onPrepare);
  validateHandler('onActivate', options.onActivate);
  validateHandler('onDeactivate', options.onDeactivate);
  validateHandler('onMessage', options.onMessage);
  return settings;
}

/**
 * Quorum mode (DESIGN §9): K deployments, and what this version does not do there yet:
 * replicated durability (each deployment is its own majority vote), the group feed.
 */
function validateQuorumOptions(options: JoinOptions): void {
  validateQuorumSources(options.redis as readonly unknown[]);
  if ((options.durability ?? 'async') !== 'async') {
    throw new ConfigError(
      'durability',
      options.durability,
      "must be 'async' in quorum mode: the majority of deployments is the durability",
    );
  }
  if (options.onMessage !== undefined) {
    throw new ConfigError('onMessage', 'a handler', 'the group feed is not available in quorum mode yet');
  }
}
