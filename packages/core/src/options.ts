import { Cluster, Redis } from 'ioredis';
import { ConfigError } from './errors.js';
import { redact } from './failures.js';

/** Defaults for every optional setting of a member, in one place. */
export const MEMBER_DEFAULTS = Object.freeze({
  activeGoal: 1,
  heartbeatInterval: 1000,
  preparationInterval: 0,
  activationInterval: 3000,
  /** ρ: how far a member's clock may drift from Redis's (1 %). */
  clockDrift: 0.01,
  durability: 'async',
});

const GROUP_NAME = /^[A-Za-z0-9._-]{1,128}$/;
const MEMBER_ID = /^[A-Za-z0-9._:@/-]{1,200}$/;
const PREFIX = /^[A-Za-z0-9._:-]{1,64}$/;
export const MAX_WEIGHT = 65535;
export const MAX_ACTIVE_GOAL = 10_000;
const MIN_INTERVAL = 10;
/** One day: a longer lease is a mistake, and timers cannot wait much longer (2^31 ms). The scripts hold the same bound. */
export const MAX_INTERVAL = 86_400_000;

/** A group's name, or a queue's (`field` 'queue'): the same rules. */
export function validateGroupName(group: unknown, field: 'group' | 'queue' = 'group'): string {
  if (typeof group !== 'string' || group.length === 0) {
    throw new ConfigError(field, group, `a ${field} name is 1-128 characters of A-Z a-z 0-9 . _ -`);
  }
  if (group.length > 128) throw new ConfigError(field, group, `longer than 128 characters (${group.length})`);
  if (!GROUP_NAME.test(group)) {
    const bad = [...group].find((c) => !/[A-Za-z0-9._-]/.test(c)) ?? '';
    throw new ConfigError(field, group, `character ${JSON.stringify(bad)} is not allowed; use A-Z a-z 0-9 . _ -`);
  }
  return group;
}

/** A member's id, or a queue worker's (`field` 'workerId'): the same rules. */
export function validateMemberId(id: unknown, field: 'memberId' | 'workerId' = 'memberId'): string {
  if (typeof id !== 'string' || !MEMBER_ID.test(id)) {
    throw new ConfigError(
      field,
      id,
      `${field === 'memberId' ? 'a member' : 'a worker'} id is 1-200 characters of A-Z a-z 0-9 . _ : @ / -`,
    );
  }
  return id;
}

export function validatePrefix(prefix: unknown): string {
  if (typeof prefix !== 'string' || !PREFIX.test(prefix)) {
    throw new ConfigError('prefix', prefix, 'a key prefix is 1-64 characters of A-Z a-z 0-9 . _ : -');
  }
  return prefix;
}

export function validateWeight(weight: unknown, field = 'weight'): number {
  if (!Number.isInteger(weight) || (weight as number) < 1 || (weight as number) > MAX_WEIGHT) {
    throw new ConfigError(
      field,
      weight,
      `must be an integer from 1 to ${MAX_WEIGHT} (0 is reserved for members disabled after a failed activation)`,
    );
  }
  return weight as number;
}

export function validateActiveGoal(goal: unknown, field = 'activeGoal'): number {
  if (!Number.isInteger(goal) || (goal as number) < 1 || (goal as number) > MAX_ACTIVE_GOAL) {
    throw new ConfigError(field, goal, `must be an integer from 1 to ${MAX_ACTIVE_GOAL}`);
  }
  return goal as number;
}

export interface Intervals {
  heartbeatInterval: number;
  preparationInterval: number;
  activationInterval: number;
}

/** 0 < H < A, and P = 0 or H < P < A (DESIGN §1); all whole milliseconds, at most a day. */
export function validateIntervals(intervals: Intervals): Intervals {
  const { heartbeatInterval: h, preparationInterval: p, activationInterval: a } = intervals;
  for (const [field, value] of Object.entries(intervals)) {
    if (!Number.isInteger(value) || value < 0) {
      throw new ConfigError(field, value, 'must be a whole number of milliseconds');
    }
    if (value > MAX_INTERVAL) throw new ConfigError(field, value, `must be at most ${MAX_INTERVAL} ms (one day)`);
  }
  if (h < MIN_INTERVAL) throw new ConfigError('heartbeatInterval', h, `must be at least ${MIN_INTERVAL} ms`);
  if (a <= h) {
    throw new ConfigError('activationInterval', a, `must be greater than heartbeatInterval (${h} ms)`);
  }
  if (p !== 0 && (p <= h || p >= a)) {
    throw new ConfigError(
      'preparationInterval',
      p,
      `must be 0 (no prepare hints) or between heartbeatInterval (${h} ms) and activationInterval (${a} ms), exclusive`,
    );
  }
  return intervals;
}

/**
 * A renewal sent at t0 holds the lease until t0 + A·(1−ρ) − δ; the next one is sent H later
 * and may take a whole command timeout to answer. Intervals where that cannot fit never hold
 * a lease for long (DESIGN §1).
 */
export function validateLeaseBudget(
  intervals: Intervals,
  clockDrift: number,
  commandTimeout: number,
  margin: number,
): void {
  const { heartbeatInterval: h, activationInterval: a } = intervals;
  const usable = a * (1 - clockDrift) - margin;
  if (usable <= h + commandTimeout) {
    throw new ConfigError(
      'activationInterval',
      a,
      `cannot hold a lease: A·(1−ρ) − δ = ${usable.toFixed(0)} ms must exceed heartbeatInterval plus the command timeout (${h} + ${commandTimeout} = ${h + commandTimeout} ms); raise activationInterval or lower heartbeatInterval`,
    );
  }
}

/** The command timeout of the lease connection: below H (S5), at least 5 ms. */
export function commandTimeoutFor(heartbeatInterval: number): number {
  return Math.max(5, Math.floor(heartbeatInterval * 0.8));
}

export function validateDurability(durability: unknown): 'async' | 'replicated' {
  if (durability !== 'async' && durability !== 'replicated') {
    throw new ConfigError('durability', durability, "must be 'async' or 'replicated'");
  }
  return durability;
}

export function validateClockDrift(drift: unknown): number {
  if (typeof drift !== 'number' || !(drift >= 0 && drift < 0.5)) {
    throw new ConfigError('clockDrift', drift, 'must be a fraction from 0 to 0.5 (0.01 = 1 %)');
  }
  return drift;
}

/** A lost interval of a monitor: positive whole milliseconds, at most one day. */
export function validateLostInterval(lostInterval: unknown): number {
  if (!Number.isInteger(lostInterval) || (lostInterval as number) <= 0 || (lostInterval as number) > MAX_INTERVAL) {
    throw new ConfigError(
      'lostInterval',
      lostInterval,
      `must be a whole number of milliseconds from 1 to ${MAX_INTERVAL}`,
    );
  }
  return lostInterval as number;
}

/** A handler is a function, or absent. */
export function validateHandler(field: string, handler: unknown): void {
  if (handler !== undefined && typeof handler !== 'function') {
    throw new ConfigError(field, handler, 'must be a function (or left out)');
  }
}

/**
 * What to connect through: an ioredis client, connection options, or a URL. A string must be a
 * redis:// or rediss:// URL (ioredis would read anything else as a host name).
 */
export function validateRedisSource(redis: unknown, field = 'redis'): void {
  if (Array.isArray(redis)) {
    throw new ConfigError(
      field,
      `an array of ${redis.length}`,
      'one Redis deployment only here: pass one URL, one options object or one ioredis client (an array of deployments is quorum mode, which this call does not have)',
    );
  }
  if (typeof redis === 'object' && redis !== null && !(redis instanceof Redis) && !(redis instanceof Cluster)) {
    const proto = Object.getPrototypeOf(redis);
    if (proto !== Object.prototype && proto !== null) {
      throw new ConfigError(
        field,
        `a ${proto?.constructor?.name ?? 'class instance'}`,
        'pass an ioredis client, a redis:// URL or a plain options object',
      );
    }
  }
  if (redis === undefined || redis === null || (typeof redis !== 'string' && typeof redis !== 'object')) {
    throw new ConfigError(field, redis, 'pass an ioredis client, a redis:// URL or options');
  }
  if (typeof redis !== 'string') return;
  let url: URL | undefined;
  try {
    url = new URL(redis);
  } catch {
    url = undefined;
  }
  if (!url || (url.protocol !== 'redis:' && url.protocol !== 'rediss:') || url.hostname === '') {
    throw new ConfigError(field, redact(redis), 'must be a redis://host:port or rediss://host:port URL');
  }
}

/** Fewest and most independent deployments in quorum mode (DESIGN §9). */
export const MIN_QUORUM_SERVERS = 3;
export const MAX_QUORUM_SERVERS = 7;

/**
 * Quorum mode (DESIGN §9): an array of K independent deployments, K odd from 3 to 7, each a URL,
 * options or an ioredis client (a Sentinel set or a Cluster is one deployment). One element is
 * not quorum mode: pass it alone.
 */
export function validateQuorumSources(redis: readonly unknown[]): void {
  const k = redis.length;
  if (k === 1) {
    throw new ConfigError(
      'redis',
      'an array of 1',
      'one deployment is not quorum mode: pass it alone (not in an array), or list 3, 5 or 7 independent deployments',
    );
  }
  if (k < MIN_QUORUM_SERVERS || k > MAX_QUORUM_SERVERS || k % 2 === 0) {
    const why =
      k % 2 === 0 && k > 0
        ? 'an even number can split in half with no majority on either side'
        : k < MIN_QUORUM_SERVERS
          ? 'fewer than 3 cannot lose a single one'
          : 'more than 7 only adds round trips';
    throw new ConfigError(
      'redis',
      `an array of ${k}`,
      `quorum mode needs an odd number of independent deployments from ${MIN_QUORUM_SERVERS} to ${MAX_QUORUM_SERVERS} (3, 5 or 7): ${why}`,
    );
  }
  redis.forEach((source, i) => {
    validateRedisSource(source, `redis[${i}]`);
  });
}
