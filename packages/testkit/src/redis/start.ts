import { RedisContainerServer } from './container.js';
import { RedisProcess } from './process.js';
import type { RedisServer, StartRedisOptions } from './types.js';

let containerFallbackReported = false;

/**
 * Starts a real Redis server that the calling test owns: a `redis-server` process on a free
 * port in its own temporary directory, or a container when `UNDERSTUDY_TEST_REDIS=container`
 * and a Docker engine answers. It answers commands when the promise resolves.
 */
export async function startRedis(options: StartRedisOptions = {}): Promise<RedisServer> {
  // TLS servers need the certificates the kit writes next to the process: always processes.
  if (process.env.UNDERSTUDY_TEST_REDIS === 'container' && !options.tls) {
    const container = await RedisContainerServer.start(options);
    if (container) return container;
    if (!containerFallbackReported) {
      containerFallbackReported = true;
      process.stderr.write(
        'UNDERSTUDY_TEST_REDIS=container, but no Docker engine answers: using redis-server processes instead.\n',
      );
    }
  }
  return RedisProcess.start(options);
}

/**
 * A plain Redis server for tests that only send commands: the one at `REDIS_URL` when it is
 * set, else a fresh one from `startRedis()`. Tests must keep to their own keys (unique group
 * names), since an external server is shared; its faults are refused, and `stop()` leaves it running.
 */
export async function plainRedis(): Promise<RedisServer> {
  const external = process.env.REDIS_URL;
  return external ? new ExternalRedis(external) : startRedis();
}

class ExternalRedis implements RedisServer {
  readonly kind = 'external';
  readonly pid = undefined;
  readonly running = true;
  readonly paused = false;
  readonly host: string;
  readonly port: number;

  constructor(readonly url: string) {
    const parsed = new URL(url);
    this.host = parsed.hostname;
    this.port = Number(parsed.port || 6379);
  }

  kill(): Promise<void> {
    return this.#refuse('kill');
  }
  pause(): Promise<void> {
    return this.#refuse('pause');
  }
  resume(): Promise<void> {
    return this.#refuse('resume');
  }
  restart(): Promise<void> {
    return this.#refuse('restart');
  }
  admin(): Promise<string> {
    return this.#refuse('admin');
  }
  async stop(): Promise<void> {
    // Not ours to stop.
  }

  #refuse(what: string): Promise<never> {
    return Promise.reject(
      new Error(
        `${what}() needs a server the test kit started; REDIS_URL (${this.url}) is shared and is never faulted`,
      ),
    );
  }
}
