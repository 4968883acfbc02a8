import { readFileSync } from 'node:fs';
import type { RedisSource } from '@understudy/core';
import { describe, redact } from '@understudy/core/failures';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { Cluster, Redis } from 'ioredis';
import { CliError, ExitCode } from './exit.js';

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';

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

/** Parses `host:port,host:port`. */
function addresses(value: string): { host: string; port: number }[] {
  return value.split(',').map((entry) => {
    const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(entry.trim());
    if (!match) throw new InvalidArgumentError(`"${entry}" is not host:port (give a comma-separated list).`);
    const port = Number(match[2]);
    if (port < 1 || port > 65535) throw new InvalidArgumentError(`"${entry}": port ${port} is not from 1 to 65535.`);
    return { host: match[1] as string, port };
  });
}

/** K of quorum mode (DESIGN §9): an odd number of independent Redis deployments, 3 to 7. */
export const QUORUM_SIZES = { min: 3, max: 7 } as const;

/** `--redis` again: every value in order (the first replaces the default). */
function collectRedis(value: string, previous: string | string[]): string[] {
  return Array.isArray(previous) ? [...previous, value] : [value];
}

/**
 * The Redis URLs a command was given: `--redis` once or K times (`from` 'cli'), or REDIS_URL
 * with one URL or K comma-separated ones ('env'), or the default. One URL is one Redis; more
 * is quorum mode (DESIGN §9): K odd, 3 to 7, no server twice. Each URL is checked as `--redis`
 * is. Errors name the count and where it came from (usage errors).
 */
export function redisUrls(values: string | readonly string[], from: 'cli' | 'env' | 'default'): string[] {
  const given = typeof values === 'string' ? [values] : [...values];
  const urls = from === 'env' ? given.flatMap((v) => v.split(',')).map((v) => v.trim()) : given;
  const what = from === 'env' ? `REDIS_URL lists ${urls.length} URLs` : `--redis is given ${urls.length} times`;
  if (urls.some((url) => url === '')) {
    throw new CliError(`REDIS_URL ${given.join(',')}: an empty URL between commas`, ExitCode.usage);
  }
  for (const url of urls) {
    if (from === 'cli' && url.includes(',')) {
      throw new CliError(`--redis ${url}: one URL per --redis (give --redis once for each server)`, ExitCode.usage);
    }
    parseUrl(url);
  }
  if (urls.length === 1) return urls;
  if (urls.length < QUORUM_SIZES.min || urls.length > QUORUM_SIZES.max || urls.length % 2 === 0) {
    throw new CliError(
      `${what}: quorum mode needs an odd number of independent Redis servers from ${QUORUM_SIZES.min} to ${QUORUM_SIZES.max} (3, 5 or 7), got ${urls.length}`,
      ExitCode.usage,
    );
  }
  const seen = new Set<string>();
  for (const url of urls) {
    const { hostname, port } = new URL(url);
    const server = `${hostname}:${port || '6379'}`;
    if (seen.has(server)) {
      throw new CliError(
        `${what}: ${server} is named twice; quorum mode needs ${urls.length} distinct servers`,
        ExitCode.usage,
      );
    }
    seen.add(server);
  }
  return urls;
}

/**
 * The connection options every command shares. With `quorum`, `--redis` may be given K times
 * (or REDIS_URL list K URLs): they land in `redisQuorum`, and `redis` holds the first. Without
 * it, more than one URL is a usage error naming the command.
 */
export function withConnectionOptions(command: Command, { quorum = false }: { quorum?: boolean } = {}): Command {
  return command
    .addOption(
      new Option(
        '--redis <url>',
        quorum
          ? 'Redis to coordinate through (redis://[user:password@]host:port[/db]; rediss:// for TLS); give it K times (3, 5 or 7 independent servers) for quorum mode'
          : 'Redis to coordinate through (redis://[user:password@]host:port[/db]; rediss:// for TLS)',
      )
        .env('REDIS_URL')
        .default(DEFAULT_REDIS_URL)
        .argParser(collectRedis),
    )
    .hook('preAction', (self) => {
      const source = self.getOptionValueSource('redis');
      const urls = redisUrls(
        self.getOptionValue('redis') as string | string[],
        source === 'env' ? 'env' : source === 'cli' ? 'cli' : 'default',
      );
      if (urls.length > 1 && !quorum) {
        throw new CliError(`${self.name()} takes one Redis (--redis once), got ${urls.length}`, ExitCode.usage);
      }
      self.setOptionValueWithSource('redis', urls[0], source);
      if (urls.length > 1) self.setOptionValueWithSource('redisQuorum', urls, source);
    })
    .addOption(
      new Option('--tls-ca <file>', 'TLS: trust the CA certificates in this PEM file (rediss:// only)').env(
        'REDIS_TLS_CA',
      ),
    )
    .addOption(
      new Option('--tls-cert <file>', 'TLS: client certificate (PEM), for servers that require one').env(
        'REDIS_TLS_CERT',
      ),
    )
    .addOption(new Option('--tls-key <file>', 'TLS: the client certificate’s private key (PEM)').env('REDIS_TLS_KEY'))
    .addOption(
      new Option('--sentinel <host:port,...>', 'connect through Redis Sentinel instead (with --master-name)')
        .env('REDIS_SENTINELS')
        .argParser(addresses),
    )
    .addOption(new Option('--master-name <name>', 'the master name the Sentinels watch').env('REDIS_MASTER_NAME'))
    .addOption(
      new Option('--cluster <host:port,...>', 'connect to a Redis Cluster through these nodes instead')
        .env('REDIS_CLUSTER')
        .argParser(addresses),
    )
    .addOption(new Option('--prefix <prefix>', 'key prefix of the groups').default('understudy'));
}

export interface ConnectionOptions {
  /** The one Redis, or the first of a quorum's. */
  redis: string;
  /** Quorum mode: the K URLs (`--redis` given K times, or REDIS_URL with K comma-separated URLs). */
  redisQuorum?: string[];
  tlsCa?: string;
  tlsCert?: string;
  tlsKey?: string;
  sentinel?: { host: string; port: number }[];
  masterName?: string;
  cluster?: { host: string; port: number }[];
  prefix: string;
}

/**
 * What the library connects through: a URL, Sentinel options, or a (never connected) Cluster
 * client that the library duplicates. Credentials in --redis apply to Sentinel's and the
 * Cluster's data nodes too.
 */
export function redisSource(options: ConnectionOptions): RedisSource {
  if (options.redisQuorum) {
    // The commands that speak quorum mode call groupSources; the others take one Redis.
    throw new CliError(
      `--redis is given ${options.redisQuorum.length} times: quorum mode (one group over independent Redis servers) is supported by run, monitor, status and group set; give --redis once`,
      ExitCode.usage,
    );
  }
  if (options.sentinel && options.cluster) {
    throw new CliError('give --sentinel or --cluster, not both', ExitCode.usage);
  }
  const url = parseUrl(options.redis);
  const tls = tlsOptions(options, url);
  if (url.protocol === 'rediss:' && (options.sentinel || options.cluster)) {
    throw new CliError(
      'TLS (rediss://) works with a single Redis only here; Sentinel and Cluster over TLS need ioredis options in code',
      ExitCode.usage,
    );
  }
  const auth = {
    ...(url.username ? { username: decodeURIComponent(url.username) } : {}),
    ...(url.password ? { password: decodeURIComponent(url.password) } : {}),
  };
  if (options.sentinel) {
    if (!options.masterName) throw new CliError('--sentinel needs --master-name', ExitCode.usage);
    return { sentinels: options.sentinel, name: options.masterName, ...auth };
  }
  if (options.cluster) return new Cluster(options.cluster, { lazyConnect: true, redisOptions: auth });
  // A client that never connects: the library opens its own connections from its options.
  if (tls) return new Redis(options.redis, { lazyConnect: true, tls });
  return options.redis;
}

/**
 * What `run`, `monitor`, `status` and `group set` hand core (joinGroup, monitorGroup,
 * describeGroup, readHistory, setActiveGoal): the one source, or in quorum mode
 * the K URLs (DESIGN §9), each with the TLS files given. Sentinel and Cluster deployments in a
 * quorum need ioredis clients in code.
 */
export function groupSources(options: ConnectionOptions): RedisSource | RedisSource[] {
  const quorum = options.redisQuorum;
  if (!quorum) return redisSource(options);
  if (options.sentinel || options.cluster) {
    throw new CliError(
      'quorum mode takes K redis:// or rediss:// URLs here; a quorum of Sentinel sets or Clusters needs ioredis clients in code',
      ExitCode.usage,
    );
  }
  return quorum.map((redis) => redisSource({ ...options, redis, redisQuorum: undefined }));
}

function parseUrl(redis: string): URL {
  let url: URL;
  try {
    url = new URL(redis);
  } catch {
    throw new CliError(`--redis ${redis}: not a URL; give redis://host:port or rediss://host:port`, ExitCode.usage);
  }
  if (url.protocol !== 'redis:' && url.protocol !== 'rediss:') {
    throw new CliError(`--redis ${redis}: the scheme must be redis:// or rediss:// (TLS)`, ExitCode.usage);
  }
  return url;
}

/** The CA, certificate and key files, read now so that a bad path fails before anything connects. */
function tlsOptions(options: ConnectionOptions, url: URL): { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  const files = { ca: options.tlsCa, cert: options.tlsCert, key: options.tlsKey };
  const given = Object.entries(files).filter(([, file]) => file !== undefined) as [string, string][];
  if (given.length === 0) return undefined;
  if (url.protocol !== 'rediss:') {
    throw new CliError(`--tls-${given[0]?.[0]} needs a rediss:// URL in --redis`, ExitCode.usage);
  }
  if ((files.cert === undefined) !== (files.key === undefined)) {
    throw new CliError('--tls-cert and --tls-key go together', ExitCode.usage);
  }
  const tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } = {};
  for (const [name, file] of given) {
    try {
      tls[name as 'ca' | 'cert' | 'key'] = readFileSync(file);
    } catch (error) {
      throw new CliError(`--tls-${name} ${file}: ${describe(error)}`, ExitCode.usage);
    }
  }
  return tls;
}

/** The connection for messages, without credentials. */
export function describeConnection(options: ConnectionOptions): string {
  if (options.sentinel) {
    return `Sentinel master ${options.masterName} via ${options.sentinel.map((a) => `${a.host}:${a.port}`).join(',')}`;
  }
  if (options.cluster) return `Cluster ${options.cluster.map((a) => `${a.host}:${a.port}`).join(',')}`;
  if (options.redisQuorum) return `the quorum of ${options.redisQuorum.map(redact).join(', ')}`;
  return redact(options.redis);
}
