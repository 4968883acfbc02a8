import { withConnection } from '../connections/pool.js';
import { DEFAULT_PREFIX } from '../keys.js';
import { type ReadOptions, scanNames } from '../monitor/read.js';
import { validateGroupName, validatePrefix, validateRedisSource } from '../options.js';
import { queueKeys } from './keys.js';
import { readQueue } from './monitor.js';
import type { QueueSnapshot } from './types.js';

/** Names of every queue on the server (SCAN over the queues' config keys), sorted. */
export function listQueues(options: ReadOptions): Promise<string[]> {
  return scanNames(options, 'list queues', '{q:*}:config', /\{q:([^}]*)\}:config$/);
}

/** One read of a queue: depth, tasks in flight, dead letters, live workers. */
export async function describeQueue(options: ReadOptions & { queue: string }): Promise<QueueSnapshot> {
  validateRedisSource(options.redis);
  const keys = queueKeys(validateGroupName(options.queue, 'queue'), validatePrefix(options.prefix ?? DEFAULT_PREFIX));
  return withConnection(options.redis, options.timeout ?? 5000, `describe queue ${keys.queue}`, (c) =>
    readQueue(c, keys),
  );
}
