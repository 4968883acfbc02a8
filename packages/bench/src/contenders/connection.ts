import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ContenderConfig } from './types.js';

/**
 * What understudy connects through: the URL, Sentinel options, or a (never connected) Cluster
 * client that the library duplicates — the same forms as the command line's connection flags.
 */
export function understudySource(config: ContenderConfig): string | RedisOptions | Cluster {
  const topology = config.topology;
  if (topology?.kind === 'sentinel') return { sentinels: topology.sentinels, name: topology.name };
  if (topology?.kind === 'cluster') return new Cluster(topology.nodes, { lazyConnect: true });
  return config.redisUrl;
}

/** A peer's own client, on the same Redis as understudy's members. */
export function peerClient(config: ContenderConfig, options: RedisOptions): Redis | Cluster {
  const topology = config.topology;
  if (topology?.kind === 'sentinel')
    return new Redis({ sentinels: topology.sentinels, name: topology.name, ...options });
  if (topology?.kind === 'cluster') return new Cluster(topology.nodes, { redisOptions: options });
  return new Redis(config.redisUrl, options);
}
