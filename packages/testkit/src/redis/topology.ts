import { redisServerBinary } from './binary.js';
import { RedisProcess } from './process.js';
import { rawCommand } from './resp.js';
import type { StartRedisOptions } from './types.js';

/** Polls `check` every 50 ms until it returns true; fails with `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `redis-cli`, next to the redis-server binary the test kit uses. */
export function redisCliBinary(): string {
  return redisServerBinary().replace(/redis-server$/, 'redis-cli');
}

/** Starts several servers at once; if one fails, the others are stopped. */
export async function startAll(options: readonly StartRedisOptions[]): Promise<RedisProcess[]> {
  const started = await Promise.allSettled(options.map((o) => RedisProcess.start(o)));
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(servers.map((s) => s.stop()));
    throw failed.reason;
  }
  return servers;
}

/** `INFO <section>` of a server as a map of its fields. */
export async function info(port: number, section: string): Promise<Map<string, string>> {
  const text = await rawCommand(port, ['INFO', section]);
  return new Map(
    text
      .split('\r\n')
      .filter((line) => line.includes(':'))
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 1)]),
  );
}
