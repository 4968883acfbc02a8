// The Redis deployments with failover that the HA scenarios run on: the test kit's Sentinel set
// and Cluster, with what a scenario needs to fail their master over and heal them again.
import {
  type RedisCluster,
  type RedisServer,
  type SentinelSet,
  startCluster,
  startSentinelSet,
} from '@understudy/testkit';
import { Redis } from 'ioredis';
import { hrNow, sleep } from './clock.js';
import type { ContenderTopology } from './contenders/types.js';

export type TopologyKind = 'sentinel' | 'cluster';

/** A direct connection to one server of a topology, for probes that must not wait. */
export interface Probe {
  server: RedisServer;
  client: Redis;
}

export interface HaTopology {
  kind: TopologyKind;
  /** How the report names it. */
  description: string;
  /** How contenders connect (the same forms as `--sentinel` / `--cluster`). */
  contender: ContenderTopology;
  /** The server that holds `group`'s keys now. */
  master(group: string): Promise<RedisServer>;
  /** Servers that may take over from `master`: the set's replicas, or that Cluster master's replicas. */
  successors(master: RedisServer): Promise<RedisServer[]>;
  probe(server: RedisServer): Probe;
  /** Sentinel: hrNow() of every `+switch-master` any Sentinel published. */
  switches: number[];
  /**
   * After `old` was killed (or paused and resumed): bring it back as a replica of `current`
   * and wait until every replica is in sync again.
   */
  heal(old: RedisServer, current: RedisServer): Promise<void>;
  stop(): Promise<void>;
}

/** How each scenario's topology is set up: the test kit's defaults (3 s down-after, 1 s node timeout). */
export const TOPOLOGY_SETTINGS = Object.freeze({
  sentinel:
    'Sentinel: 1 master, 2 replicas, 3 Sentinels (quorum 2), down-after-milliseconds 3000, failover-timeout 3000, min-replicas-to-write 1 with max-lag 1 s',
  cluster: 'Cluster: 3 masters with 1 replica each, cluster-node-timeout 1000, cluster-replica-validity-factor 0',
});

const HEAL_TIMEOUT_MS = 40_000;

function probes(servers: readonly RedisServer[]): (server: RedisServer) => Probe {
  const byPort = new Map<number, Probe>();
  for (const server of servers) {
    const client = new Redis({
      host: server.host,
      port: server.port,
      // A probe answers now or fails: no queue, no retries, a short timeout (a paused server).
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      commandTimeout: 250,
      connectTimeout: 250,
      retryStrategy: () => 50,
      connectionName: 'bench-probe',
    });
    client.on('error', () => undefined);
    byPort.set(server.port, { server, client });
  }
  return (server) => {
    const probe = byPort.get(server.port);
    if (!probe) throw new Error(`no probe for the server on port ${server.port}`);
    return probe;
  };
}

export async function startSentinelTopology(): Promise<HaTopology> {
  const set: SentinelSet = await startSentinelSet();
  const probe = probes(set.servers);
  // Every Sentinel publishes the switch once it knows; the first one counts.
  const switches: number[] = [];
  const watchers = set.sentinels.map((sentinel) => {
    const watcher = new Redis({ host: sentinel.host, port: sentinel.port, connectionName: 'bench' });
    watcher.on('error', () => undefined);
    watcher.on('message', (channel: string) => {
      if (channel === '+switch-master') switches.push(hrNow());
    });
    return watcher;
  });
  await Promise.all(watchers.map((w) => w.subscribe('+switch-master')));
  const askers = set.sentinels.map((sentinel) => {
    const asker = new Redis({
      host: sentinel.host,
      port: sentinel.port,
      connectionName: 'bench',
      commandTimeout: 1000,
      maxRetriesPerRequest: 0,
    });
    asker.on('error', () => undefined);
    return asker;
  });
  /**
   * Every Sentinel done with the last failover: the master flagged `master` only, and every
   * replica `slave`, linked to it. (The test kit's healthy() only checks who they name.)
   */
  const sentinelsAtRest = async (master: RedisServer): Promise<boolean> => {
    for (const asker of askers) {
      const fields = (await asker.call('SENTINEL', 'MASTER', set.masterName)) as string[];
      const field = (name: string) => fields[fields.indexOf(name) + 1];
      if (field('flags') !== 'master' || Number(field('port')) !== master.port) return false;
      const replicas = (await asker.call('SENTINEL', 'REPLICAS', set.masterName)) as string[][];
      if (replicas.length !== set.servers.length - 1) return false;
      for (const r of replicas) {
        const value = (name: string) => r[r.indexOf(name) + 1];
        if (value('flags') !== 'slave' || value('master-link-status') !== 'ok') return false;
        if (Number(value('master-port')) !== master.port) return false;
      }
    }
    return true;
  };
  return {
    kind: 'sentinel',
    description: TOPOLOGY_SETTINGS.sentinel,
    contender: { kind: 'sentinel', sentinels: set.sentinelAddresses, name: set.masterName },
    master: () => set.master(),
    async successors(master) {
      return set.servers.filter((s) => s !== master && s.running);
    },
    probe,
    switches,
    async heal(old, current) {
      if (!old.running) {
        // Back empty; it must not serve as a master in the meantime: make it a replica at once
        // (the Sentinels would convert it too, but only after their next 10 s INFO round).
        await old.restart();
        const master = await set.master().catch(() => current);
        await old.admin('REPLICAOF', master.host, String(master.port));
      }
      await set.waitUntilHealthy(HEAL_TIMEOUT_MS);
      const deadline = hrNow() + HEAL_TIMEOUT_MS;
      // The Sentinels may have moved on from `current` (a failover that timed out is tried again
      // with another replica): at rest around whichever master they name.
      while (!(await sentinelsAtRest(await set.master()).catch(() => false))) {
        if (hrNow() > deadline) {
          const views = await Promise.all(
            askers.map(async (a) => [
              await a.call('SENTINEL', 'MASTER', set.masterName).catch(String),
              await a.call('SENTINEL', 'REPLICAS', set.masterName).catch(String),
            ]),
          );
          throw new Error(
            `the Sentinels were not at rest ${HEAL_TIMEOUT_MS} ms after a failover: ${JSON.stringify(views)}`,
          );
        }
        await sleep(100);
      }
    },
    async stop() {
      for (const w of [...watchers, ...askers]) w.disconnect();
      for (const s of set.servers) probe(s).client.disconnect();
      await set.stop();
    },
  };
}

export async function startClusterTopology(): Promise<HaTopology> {
  const cluster: RedisCluster = await startCluster();
  const probe = probes(cluster.nodes);
  return {
    kind: 'cluster',
    description: TOPOLOGY_SETTINGS.cluster,
    contender: { kind: 'cluster', nodes: cluster.startupNodes },
    master: (group) => cluster.masterFor(`understudy:{${group}}:config`),
    async successors(master) {
      const nodes = await cluster.topology();
      const id = nodes.find((n) => n.port === master.port)?.id;
      const ports = new Set(nodes.filter((n) => n.masterId === id).map((n) => n.port));
      return cluster.nodes.filter((n) => ports.has(n.port));
    },
    probe,
    switches: [],
    async heal(old) {
      // A restarted node reads nodes.conf, finds its slots taken and rejoins as a replica; a
      // resumed one learns the same from the cluster bus.
      if (!old.running) await old.restart();
      const replicas = cluster.nodes.length / 2;
      await cluster.waitUntilHealthy(HEAL_TIMEOUT_MS, replicas);
      // Every node must agree on the slot owners before the next round picks a master.
      await sleep(200);
    },
    async stop() {
      for (const n of cluster.nodes) probe(n).client.disconnect();
      await cluster.stop();
    },
  };
}
