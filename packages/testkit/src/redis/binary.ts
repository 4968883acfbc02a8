import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Thrown when no `redis-server` binary can be found; the message says how to get one. */
export class RedisBinaryMissingError extends Error {
  readonly code = 'REDIS_BINARY_MISSING';
  constructor(searched: string) {
    super(
      `redis-server was not found (looked in ${searched}). The tests start their own Redis servers from this binary. ` +
        'Install it with `sudo apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), ' +
        'or point UNDERSTUDY_REDIS_SERVER at a redis-server binary. `scripts/test` installs it for you on Debian.',
    );
    this.name = 'RedisBinaryMissingError';
  }
}

/** Path of the `redis-server` binary: `UNDERSTUDY_REDIS_SERVER`, else the first one on `PATH`. */
export function redisServerBinary(): string {
  const explicit = process.env.UNDERSTUDY_REDIS_SERVER;
  const candidates = explicit
    ? [explicit]
    : (process.env.PATH ?? '')
        .split(delimiter)
        .filter(Boolean)
        .map((dir) => join(dir, 'redis-server'));
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  throw new RedisBinaryMissingError(explicit ? `UNDERSTUDY_REDIS_SERVER=${explicit}` : 'PATH');
}
