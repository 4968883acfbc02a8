import type { Cluster, Redis } from 'ioredis';
import { runOnSource } from '../connections/pool.js';
import { encodeData } from '../feed/encoding.js';
import { DEFAULT_PREFIX } from '../keys.js';
import { validateGroupName, validatePrefix, validateRedisSource } from '../options.js';
import { queueScripts } from '../scripts.js';
import { queueKeys } from './keys.js';
import type { QueueOptions } from './types.js';

/**
 * Adds a task to a queue and hands it at once to the heaviest live worker with free capacity,
 * in one script. Resolves with the task's id. `data` is a string, a Buffer or a JSON value.
 * An ioredis client is used as it is (its offline queue and retries apply: a resent enqueue adds
 * the task twice, at least once is the guarantee); a URL or options open a connection per call.
 */
export async function enqueue(options: QueueOptions, data: unknown): Promise<string> {
  const queue = validateGroupName(options.queue, 'queue');
  const keys = queueKeys(queue, validatePrefix(options.prefix ?? DEFAULT_PREFIX));
  validateRedisSource(options.redis);
  const [dataType, payload] = encodeData(data);
  const run = (connection: Redis | Cluster) => queueScripts.enqueue(connection, keys, { dataType, data: payload });
  return runOnSource(options.redis, 5000, `enqueue a task on queue ${queue}`, run);
}
