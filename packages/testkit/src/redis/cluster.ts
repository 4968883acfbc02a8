import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RedisProcess } from './process.js';
import { rawCommand } from './resp.js';
import { info, redisCliBinary, startAll, until } from './topology.js';

const run = promisify(execFile);

export interface StartClusterOptions {
  /** Masters, each owning an equal share of the slots (default 3). */
  masters?: number;
  /** Replicas per master (default 1). */
  replicasPerMaster?: number;
  /** `cluster-node-timeout`: how long a silent master lasts before its replica takes over (default 1000 ms). */
  nodeTimeoutMs?: number;
}

export interface ClusterNodeInfo {
  id: string;
  port: number;
  role: 'master' | 'replica';
  /** For a replica, the id of its master. */
  masterId: string | undefined;
  failed: boolean;
  slots: [number, number][];
}

/** A Redis Cluster of `redis-server` processes on free ports, each in its own directory. */
export class RedisCluster {
  constructor(readonly nodes: readonly RedisProcess[]) {}

  /** Where a cluster client starts: every node. */
  get startupNodes(): { host: string; port: number }[] {
    return this.nodes.map((n) => ({ host: n.host, port: n.port }));
  }

  /** The cluster's view of its nodes, read from a live node (`CLUSTER NODES`). */
  async topology(): Promise<ClusterNodeInfo[]> {
    const live = this.nodes.filter((n) => n.running && !n.paused);
    for (const node of live) {
      const text = await rawCommand(node.port, ['CLUSTER', 'NODES']).catch(() => undefined);
      if (!text || text.startsWith('-')) continue;
      return text
        .trim()
        .split('\n')
        .map((line) => {
          const [id = '', address = '', flags = '', master = '', , , , , ...slots] = line.split(' ');
          return {
            id,
            port: Number(address.split('@')[0]?.split(':')[1]),
            role: flags.includes('master') ? 'master' : 'replica',
            masterId: master === '-' ? undefined : master,
            failed: flags.split(',').includes('fail'),
            slots: slots
              .filter((range) => !range.startsWith('['))
              .map((range) => {
                const [from, to] = range.split('-').map(Number);
                return [from ?? 0, to ?? from ?? 0] as [number, number];
              }),
          } satisfies ClusterNodeInfo;
        });
    }
    throw new Error('no cluster node answers CLUSTER NODES');
  }

  /** The node that serves `key` now (its slot's master). */
  async masterFor(key: string): Promise<RedisProcess> {
    const live = this.nodes.find((n) => n.running && !n.paused);
    if (!live) throw new Error('no cluster node is running');
    const slot = Number((await rawCommand(live.port, ['CLUSTER', 'KEYSLOT', key])).slice(1));
    const owner = (await this.topology()).find(
      (n) => n.role === 'master' && !n.failed && n.slots.some(([from, to]) => slot >= from && slot <= to),
    );
    const node = this.nodes.find((n) => n.port === owner?.port);
    if (!node) throw new Error(`no master serves slot ${slot} (key ${key})`);
    return node;
  }

  /**
   * Every slot served, every node agreeing (`cluster_state:ok`), every replica in sync, and at
   * least `minReplicas` of the running nodes replicas (right after creation, a node that is to
   * be a replica still calls itself a master for a moment).
   */
  async healthy(minReplicas = 0): Promise<boolean> {
    const live = this.nodes.filter((n) => n.running && !n.paused);
    let replicas = 0;
    for (const node of live) {
      const state = await rawCommand(node.port, ['CLUSTER', 'INFO']);
      if (!state.includes('cluster_state:ok')) return false;
      const replication = await info(node.port, 'replication');
      if (replication.get('role') === 'slave') {
        if (replication.get('master_link_status') !== 'up') return false;
        replicas += 1;
      }
    }
    return replicas >= minReplicas;
  }

  waitUntilHealthy(timeoutMs = 20_000, minReplicas = 0): Promise<void> {
    return until(() => this.healthy(minReplicas), 'the cluster to be healthy', timeoutMs);
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}

/**
 * Starts a Redis Cluster (by default 3 masters with 1 replica each) from `redis-server`
 * binaries and waits until it serves every slot with every replica synced. Replicas sync
 * without the default 5 s delay and may all be promoted, so a failover test does not stall.
 */
export async function startCluster(options: StartClusterOptions = {}): Promise<RedisCluster> {
  const masters = options.masters ?? 3;
  const replicas = options.replicasPerMaster ?? 1;
  const nodes = await startAll(
    Array.from({ length: masters * (1 + replicas) }, () => ({
      config: {
        'cluster-enabled': 'yes',
        'cluster-config-file': 'nodes.conf',
        'cluster-node-timeout': String(options.nodeTimeoutMs ?? 1000),
        'cluster-replica-validity-factor': '0',
        'repl-diskless-sync-delay': '0',
      },
    })),
  );
  const cluster = new RedisCluster(nodes);
  try {
    await run(redisCliBinary(), [
      '--cluster',
      'create',
      ...nodes.map((n) => `${n.host}:${n.port}`),
      '--cluster-replicas',
      String(replicas),
      '--cluster-yes',
    ]);
    await cluster.waitUntilHealthy(20_000, masters * replicas);
    return cluster;
  } catch (error) {
    await cluster.stop();
    throw error;
  }
}
