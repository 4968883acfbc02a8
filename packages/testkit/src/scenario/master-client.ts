import { Redis } from 'ioredis';
import type { RedisServer } from '../redis/types.js';

/**
 * An ioredis client of the harness on the current master, replaced when the master changes.
 * No offline queue and no retries: a publish or enqueue that failed is not resent behind the
 * harness's back (it is simply not recorded).
 */
export class MasterClient {
  readonly #run: { master(): Promise<RedisServer> };
  #client: { url: string; redis: Redis } | undefined;

  constructor(run: { master(): Promise<RedisServer> }) {
    this.#run = run;
  }

  async get(): Promise<Redis> {
    const { url } = await this.#run.master();
    if (this.#client?.url !== url) {
      this.#client?.redis.disconnect();
      const redis = new Redis(url, {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 0,
        commandTimeout: 1000,
        connectionName: 'chaos-harness',
      });
      redis.on('error', () => undefined);
      this.#client = { url, redis };
    }
    return this.#client.redis;
  }

  close(): void {
    this.#client?.redis.disconnect();
    this.#client = undefined;
  }
}
