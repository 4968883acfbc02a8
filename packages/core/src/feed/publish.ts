import type { Cluster, Redis } from 'ioredis';
import { redisUser } from '../connections/diagnosis.js';
import { runOnSource } from '../connections/pool.js';
import type { RedisSource } from '../connections/settings.js';
import { ConfigError } from '../errors.js';
import { classify } from '../failures.js';
import { DEFAULT_PREFIX, groupKeys } from '../keys.js';
import { validateGroupName, validatePrefix, validateRedisSource } from '../options.js';
import { encodeData } from './encoding.js';

/** Defaults of the feed, in one place. */
export const FEED_DEFAULTS = Object.freeze({
  /** The most messages a feed keeps, whatever the commits say (DESIGN §10). */
  feedMaxLength: 100_000,
  /** How long `publish` through a URL or options waits for Redis, in ms. */
  timeout: 5000,
});

export interface PublishOptions {
  /**
   * An ioredis client (the message is sent on it: pass one to publish many messages), or a URL
   * or options (a connection is opened for this one message).
   */
  redis: RedisSource;
  group: string;
  prefix?: string;
  /** The most messages the feed keeps (default 100,000); see docs/keys.md for what it trims. */
  feedMaxLength?: number;
  /** With a URL or options: how long to wait for Redis, in ms (default 5000). */
  timeout?: number;
}

/**
 * Appends a message to a group's feed (DESIGN §10) and returns its id. Every member that has
 * joined receives it, in publish order. One XADD: the feed is capped at `feedMaxLength`
 * (approximately: Redis trims whole stream nodes, so it may keep up to one node, 100 entries
 * by default, more); normally it is trimmed far sooner, to the lowest commit of the slots.
 */
export async function publish(options: PublishOptions, data: unknown): Promise<string> {
  validateRedisSource(options.redis);
  const keys = groupKeys(validateGroupName(options.group), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
  const maxLength = validateFeedMaxLength(options.feedMaxLength ?? FEED_DEFAULTS.feedMaxLength);
  const [field, value] = encodeData(data);
  const what = `publish to the feed of group ${keys.group}`;
  const send = async (connection: Redis | Cluster): Promise<string> => {
    try {
      return (await connection.xadd(keys.feed, 'MAXLEN', '~', maxLength, '*', field, value)) as string;
    } catch (error) {
      throw feedFailure(error, connection, what, keys.group, keys.feed);
    }
  };
  return runOnSource(options.redis, options.timeout ?? FEED_DEFAULTS.timeout, what, send, keys.group);
}

export function validateFeedMaxLength(value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1) {
    throw new ConfigError('feedMaxLength', value, 'must be a whole number of messages, at least 1');
  }
  return value as number;
}

/**
 * The library's error for a failed feed command (`classify`): a PermissionError for an ACL
 * refusal, a CorruptStateError when the feed key holds something else than a stream, else a
 * RedisUnavailableError saying what failed.
 */
export function feedFailure(error: unknown, source: RedisSource, what: string, group: string, key: string): Error {
  return classify(error, { operation: what, user: redisUser(source), group, key: { name: key, type: 'stream' } });
}
