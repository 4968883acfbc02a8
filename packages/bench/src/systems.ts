import type { Redis } from 'ioredis';
import type { ClockMap } from './clock.js';
import type { ContenderConfig, ContenderEvent, ContenderKind } from './contenders/types.js';

/** One system under test, with what the report says about it. */
export interface System {
  kind: ContenderKind;
  /** Name in tables. */
  label: string;
  /** How many may hold at once. */
  slots: number;
  /** Processes in a failover / handover run: the holders plus one standby. */
  processes: number;
  /** How a standby notices a free slot. */
  wakeup: string;
  /**
   * The dead holder's lease deadline on the hrNow() clock, read right after the kill (from
   * Redis for the Redis-based systems, from the holder's last acknowledged keepalive for etcd).
   */
  deadline(context: DeadlineContext): Promise<number | undefined>;
}

export interface DeadlineContext {
  redis: Redis;
  clocks: ClockMap;
  config: ContenderConfig;
  /** The killed holder's member id and events. */
  member: string;
  events: readonly ContenderEvent[];
}

/** Redis's TIME and a key's PTTL in one step: the deadline of a lock key, in Redis ms. */
const PTTL_AT = `local t = redis.call('TIME')
return { t[1], t[2], redis.call('PTTL', KEYS[1]) }`;

async function keyDeadline(redis: Redis, clocks: ClockMap, key: string): Promise<number | undefined> {
  const [seconds, micros, pttl] = (await redis.eval(PTTL_AT, 1, key)) as [string, string, number];
  if (pttl < 0) return undefined;
  return clocks.fromRedis(Number(seconds) * 1000 + Number(micros) / 1000 + pttl);
}

export const SYSTEMS: readonly System[] = Object.freeze([
  {
    kind: 'understudy',
    label: 'understudy',
    slots: 1,
    processes: 2,
    wakeup: 'timer at the known deadline; pub/sub on release',
    async deadline({ redis, clocks, config, member }) {
      const score = await redis.zscore(`understudy:{${config.key}}:leases`, member);
      return score === null ? undefined : clocks.fromRedis(Number(score));
    },
  },
  {
    kind: 'redlock',
    label: 'redlock loop',
    slots: 1,
    processes: 2,
    wakeup: 'polls: acquire every 200 ± 100 ms (redlock default)',
    deadline: ({ redis, clocks, config }) => keyDeadline(redis, clocks, config.key),
  },
  {
    kind: 'mutex',
    label: 'redis-semaphore Mutex',
    slots: 1,
    processes: 2,
    wakeup: 'polls: acquire every 10 ms (library default)',
    deadline: ({ redis, clocks, config }) => keyDeadline(redis, clocks, `mutex:${config.key}`),
  },
  {
    kind: 'semaphore',
    label: 'redis-semaphore Semaphore (N = 2)',
    slots: 2,
    processes: 3,
    wakeup: 'polls: acquire every 10 ms (library default)',
    async deadline({ redis, clocks, config, member }) {
      // Scores are the holders' own Date.now() at their last refresh; expiry is score + TTL.
      const score = await redis.zscore(`semaphore:${config.key}`, member);
      return score === null ? undefined : clocks.fromWall(Number(score) + config.activationMs);
    },
  },
  {
    kind: 'etcd',
    label: 'etcd election',
    slots: 1,
    processes: 2,
    wakeup: 'watch on the key ahead (no polling)',
    async deadline({ events }) {
      return events.filter((e) => e.event === 'lease').at(-1)?.deadline;
    },
  },
]);
