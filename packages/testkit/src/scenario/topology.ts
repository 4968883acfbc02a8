import { type RedisCluster, startCluster } from '../redis/cluster.js';
import { type RedisQuorum, startRedisQuorum } from '../redis/quorum.js';
import { type ReplicatedPair, startReplicatedPair } from '../redis/replicated.js';
import { type SentinelSet, type StartSentinelSetOptions, startSentinelSet } from '../redis/sentinel.js';
import { startRedis } from '../redis/start.js';
import type { RedisServer, StartRedisOptions } from '../redis/types.js';

/**
 * Where a scenario's group lives: one Redis (members reach it through a chaos proxy each), a
 * master with a replica whose replication link runs through a chaos proxy (members reach the
 * primary through a proxy each, moved to the replica when it is promoted), a Sentinel set
 * (members ask the Sentinels for the master) or a Cluster (members are Cluster clients and
 * follow MOVED / ASK), or K independent servers of quorum mode (DESIGN §9; members reach each
 * through a chaos proxy of their own).
 */
export type TopologyKind = 'single' | 'replicated' | 'sentinel' | 'cluster' | 'quorum';

/**
 * How a member process connects: to one address, through Sentinels, as a Cluster client, or
 * to the K servers of a quorum (`nodes`, in server order).
 */
export type MemberTopology = 'single' | 'sentinel' | 'cluster' | 'quorum';

export type ScenarioTopology =
  | { kind: 'single'; server: RedisServer }
  | { kind: 'replicated'; pair: ReplicatedPair }
  | { kind: 'sentinel'; set: SentinelSet }
  | { kind: 'cluster'; cluster: RedisCluster }
  | { kind: 'quorum'; quorum: RedisQuorum };

/** How a member process reaches the group's Redis (besides a single server's proxy URL). */
export interface MemberConnection {
  topology: MemberTopology;
  /**
   * The Sentinels, the Cluster's startup nodes, or a quorum's K servers (through the member's
   * own proxies, in server order), as `host:port,host:port`; empty for a single server.
   */
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

/** The default K of a `quorum` scenario. */
export const DEFAULT_QUORUM_SERVERS = 3;

export async function startTopology(
  kind: TopologyKind,
  redis: StartRedisOptions | undefined,
  sentinel: StartSentinelSetOptions | undefined,
  quorumServers = DEFAULT_QUORUM_SERVERS,
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
    case 'quorum':
      return { kind, quorum: await startRedisQuorum({ count: quorumServers, ...(redis ? { redis } : {}) }) };
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
    case 'quorum':
      return topology.quorum.stop();
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
    case 'quorum':
      return topology.quorum.servers;
  }
}

/**
 * The server that holds `key` now: the single Redis, the pair's primary, the master the
 * Sentinels name, or the master of its slot. A quorum has none: every server holds the group.
 */
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
    case 'quorum':
      return Promise.reject(
        new Error('a quorum has no master: each of its servers holds the group (run.quorum.server(i))'),
      );
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
    case 'quorum':
      // Each member reaches the servers through proxies of its own: the harness fills in `nodes`.
      return { topology: 'quorum', nodes: '', masterName: '', natMap: '' };
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
