import { type RedisCluster, startCluster } from '../redis/cluster.js';
import { type SentinelSet, startSentinelSet } from '../redis/sentinel.js';
import { startRedis } from '../redis/start.js';
import type { RedisServer, StartRedisOptions } from '../redis/types.js';

/**
 * Where a scenario's group lives: one Redis (members reach it through a chaos proxy each), a
 * Sentinel set (members ask the Sentinels for the master) or a Cluster (members are Cluster
 * clients and follow MOVED / ASK).
 */
export type TopologyKind = 'single' | 'sentinel' | 'cluster';

export type ScenarioTopology =
  | { kind: 'single'; server: RedisServer }
  | { kind: 'sentinel'; set: SentinelSet }
  | { kind: 'cluster'; cluster: RedisCluster };

/** How a member process reaches the group's Redis (besides a single server's proxy URL). */
export interface MemberConnection {
  topology: TopologyKind;
  /** The Sentinels, or the Cluster's startup nodes, as `host:port,host:port`; empty for a single server. */
  nodes: string;
  /** The Sentinels' name of the master; empty unless `topology` is `sentinel`. */
  masterName: string;
}

export async function startTopology(
  kind: TopologyKind,
  redis: StartRedisOptions | undefined,
): Promise<ScenarioTopology> {
  switch (kind) {
    case 'single':
      return { kind, server: await startRedis(redis) };
    case 'sentinel':
      return { kind, set: await startSentinelSet() };
    case 'cluster':
      return { kind, cluster: await startCluster() };
  }
}

export function stopTopology(topology: ScenarioTopology): Promise<void> {
  switch (topology.kind) {
    case 'single':
      return topology.server.stop();
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
    case 'sentinel':
      return topology.set.servers;
    case 'cluster':
      return topology.cluster.nodes;
  }
}

/** The server that holds `key` now: the master the Sentinels name, or the master of its slot. */
export function masterFor(topology: ScenarioTopology, key: string): Promise<RedisServer> {
  switch (topology.kind) {
    case 'single':
      return Promise.resolve(topology.server);
    case 'sentinel':
      return topology.set.master();
    case 'cluster':
      return topology.cluster.masterFor(key);
  }
}

export function memberConnection(topology: ScenarioTopology): MemberConnection {
  const list = (nodes: readonly { host: string; port: number }[]) => nodes.map((n) => `${n.host}:${n.port}`).join(',');
  switch (topology.kind) {
    case 'single':
      return { topology: 'single', nodes: '', masterName: '' };
    case 'sentinel':
      return { topology: 'sentinel', nodes: list(topology.set.sentinelAddresses), masterName: topology.set.masterName };
    case 'cluster':
      return { topology: 'cluster', nodes: list(topology.cluster.startupNodes), masterName: '' };
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
