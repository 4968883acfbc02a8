import { type RedisCluster, startCluster } from '../redis/cluster.js';
import { type ReplicatedPair, startReplicatedPair } from '../redis/replicated.js';
import { type SentinelSet, type StartSentinelSetOptions, startSentinelSet } from '../redis/sentinel.js';
import { startRedis } from '../redis/start.js';
import type { RedisServer, StartRedisOptions } from '../redis/types.js';

/**
 * Where a scenario's group lives: one Redis (members reach it through a chaos proxy each), a
 * master with a replica whose replication link runs through a chaos proxy (members reach the
 * primary through a proxy each, moved to the replica when it is promoted), a Sentinel set
 * (members ask the Sentinels for the master) or a Cluster (members are Cluster clients and
 * follow MOVED / ASK).
 */
export type TopologyKind = 'single' | 'replicated' | 'sentinel' | 'cluster';

/** How a member process connects: to one address, through Sentinels, or as a Cluster client. */
export type MemberTopology = 'single' | 'sentinel' | 'cluster';

export type ScenarioTopology =
  | { kind: 'single'; server: RedisServer }
  | { kind: 'replicated'; pair: ReplicatedPair }
  | { kind: 'sentinel'; set: SentinelSet }
  | { kind: 'cluster'; cluster: RedisCluster };

/** How a member process reaches the group's Redis (besides a single server's proxy URL). */
export interface MemberConnection {
  topology: MemberTopology;
  /** The Sentinels, or the Cluster's startup nodes, as `host:port,host:port`; empty for a single server. */
  nodes: string;
  /** The Sentinels' name of the master; empty unless `topology` is `sentinel`. */
  masterName: string;
  /**
   * Addresses the member reaches through something else, as `host:port=host:port,…` (ioredis'
   * `natMap`): on a proxied Sentinel set, the first master's address as the Sentinels give it,
   * mapped to the member's own proxy. Empty for none.
   */
  natMap: string;
}

export async function startTopology(
  kind: TopologyKind,
  redis: StartRedisOptions | undefined,
  sentinel: StartSentinelSetOptions | undefined,
): Promise<ScenarioTopology> {
  switch (kind) {
    case 'single':
      return { kind, server: await startRedis(redis) };
    case 'replicated':
      return { kind, pair: await startReplicatedPair(redis) };
    case 'sentinel':
      return { kind, set: await startSentinelSet(sentinel) };
    case 'cluster':
      return { kind, cluster: await startCluster() };
  }
}

export function stopTopology(topology: ScenarioTopology): Promise<void> {
  switch (topology.kind) {
    case 'single':
      return topology.server.stop();
    case 'replicated':
      return topology.pair.stop();
    case 'sentinel':
      return topology.set.stop();
    case 'cluster':
      return topology.cluster.stop();
  }
}

/** The data-bearing servers (no Sentinels): what a scenario pauses, kills, and the harness resumes. */
export function dataServers(topology: ScenarioTopology): readonly RedisServer[] {
  switch (topology.kind) {
    case 'single':
      return [topology.server];
    case 'replicated':
      return topology.pair.servers;
    case 'sentinel':
      return topology.set.servers;
    case 'cluster':
      return topology.cluster.nodes;
  }
}

/** The server that holds `key` now: the single Redis, the pair's primary, the master the Sentinels name, or the master of its slot. */
export function masterFor(topology: ScenarioTopology, key: string): Promise<RedisServer> {
  switch (topology.kind) {
    case 'single':
      return Promise.resolve(topology.server);
    case 'replicated':
      return Promise.resolve(topology.pair.primary);
    case 'sentinel':
      return topology.set.master();
    case 'cluster':
      return topology.cluster.masterFor(key);
  }
}

/** What every member of the topology connects with; the harness adds each member's own proxies. */
export function memberConnection(topology: ScenarioTopology): MemberConnection {
  const list = (nodes: readonly { host: string; port: number }[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  switch (topology.kind) {
    case 'single':
    case 'replicated':
      return { topology: 'single', nodes: '', masterName: '', natMap: '' };
    case 'sentinel':
      return {
        topology: 'sentinel',
        nodes: list(topology.set.sentinelAddresses),
        masterName: topology.set.masterName,
        natMap: '',
      };
    case 'cluster':
      return { topology: 'cluster', nodes: list(topology.cluster.startupNodes), masterName: '', natMap: '' };
  }
}

/** `host:port,host:port` as ioredis takes it. */
export function parseNodes(nodes: string): { host: string; port: number }[] {
  return nodes.split(',').map((address) => {
    const colon = address.lastIndexOf(':');
    const port = Number(address.slice(colon + 1));
    if (colon < 1 || !Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`a node address is host:port, got "${address}" (in "${nodes}")`);
    }
    return { host: address.slice(0, colon), port };
  });
}

/** `host:port=host:port,…` as ioredis' `natMap` takes it; undefined for an empty map. */
export function parseNatMap(natMap: string): Record<string, { host: string; port: number }> | undefined {
  if (natMap === '') return undefined;
  return Object.fromEntries(
    natMap.split(',').map((entry) => {
      const [from = '', to = ''] = entry.split('=');
      const [target] = parseNodes(to);
      if (!target || parseNodes(from).length !== 1)
        throw new Error(`a natMap entry is host:port=host:port, got "${entry}"`);
      return [from, target];
    }),
  );
}
