import { type Command, InvalidArgumentError, Option } from 'commander';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

/** `--redis URL`, defaulting to REDIS_URL, then the local default port. */
export function redisOption(): Option {
  return new Option('--redis <url>', 'Redis to coordinate through (redis://[user:password@]host:port[/db])')
    .env('REDIS_URL')
    .default(DEFAULT_REDIS_URL);
}

export function prefixOption(): Option {
  return new Option('--prefix <prefix>', 'key prefix of the groups').default('understudy');
}

/** Parses a whole number of at least `min`, naming the option in the error. */
export function integer(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`"${value}" is not a whole number.`);
    }
    if (n < min) throw new InvalidArgumentError(`${n} is below the minimum of ${min}.`);
    return n;
  };
}

/** Adds the connection options every command shares. */
export function withConnection(command: Command): Command {
  return command.addOption(redisOption()).addOption(prefixOption());
}

export interface ConnectionOptions {
  redis: string;
  prefix: string;
}
