import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ContenderConfig } from './types.js';

/**
 * What understudy connects through: the URL, Sentinel options, or a (never connected) Cluster
 * client that the library duplicates — the same forms as the command line's connection flags.
 */
export function understudySource(config: ContenderConfig): string | string[] | RedisOptions | Cluster {
  if (config.redisUrls) return config.redisUrls;
  const topology = config.topology;
  if (topology?.kind === 'sentinel') return sentinelOptions(topology);
  if (topology?.kind === 'cluster') return new Cluster(topology.nodes, { lazyConnect: true });
  return config.redisUrl;
}

function sentinelOptions(topology: Extract<ContenderConfig['topology'], { kind: 'sentinel' }>): RedisOptions {
  return {
    sentinels: topology.sentinels,
    name: topology.name,
    ...(topology.natMap ? { natMap: topology.natMap } : {}),
  };
}

/** A peer's own clients, on the same Redis (or the same K servers) as understudy's members. */
export function peerClients(config: ContenderConfig, options: RedisOptions): (Redis | Cluster)[] {
  if (config.redisUrls) return config.redisUrls.map((url) => new Redis(url, options));
  return [peerClient(config, options)];
}

/** A peer's own client, on the same Redis as understudy's members. */
export function peerClient(config: ContenderConfig, options: RedisOptions): Redis | Cluster {
  const topology = config.topology;
  if (topology?.kind === 'sentinel') return new Redis({ ...sentinelOptions(topology), ...options });
  if (topology?.kind === 'cluster') return new Cluster(topology.nodes, { redisOptions: options });
  return new Redis(config.redisUrl, options);
}
