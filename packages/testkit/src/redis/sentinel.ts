import { type ChaosProxy, startChaosProxy } from '../chaos/proxy.js';
import type { RedisProcess } from './process.js';
import { rawCommand } from './resp.js';
import { info, startAll, until } from './topology.js';

export interface StartSentinelSetOptions {
  /** Replicas of the master (default 2). */
  replicas?: number;
  /** Sentinels (default 3; quorum is a majority). */
  sentinels?: number;
  /** `down-after-milliseconds`: how long a silent master lasts before failover starts (default 3000). */
  downAfterMs?: number;
  /** `failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
  /**
   * Route the paths to the first master through chaos proxies (`SentinelSet.links`): each
   * replica's replication link, and the Sentinels' link (they monitor the master at the
   * proxy's address), so that a scenario can partition the master from them.
   */
  proxied?: boolean;
}

const MASTER_NAME = 'understudy';

/**
 * What every data server of a test kit Sentinel set runs with: a master refuses writes once
 * no replica acknowledged for longer than `min-replicas-max-lag` seconds, so a master cut off
 * from its replicas stops extending leases before the Sentinels can promote one of them —
 * understudy refuses to join under Sentinel otherwise (docs/OPERATIONS.md, "A partitioned old
 * master"): down-after ≥ (max-lag + 2) s.
 */
export const SENTINEL_REPLICATION = Object.freeze({ minReplicasToWrite: 1, minReplicasMaxLagS: 1, downAfterMs: 3000 });

/** The proxies of a `proxied` set, on the paths to its first master. */
export interface SentinelLinks {
  /** Replica i's replication link to the first master. */
  readonly replication: readonly ChaosProxy[];
  /** The Sentinels' link to the first master (they know it by this proxy's address). */
  readonly sentinels: ChaosProxy;
}

/** A master with replicas watched by Sentinels, all `redis-server` processes on free ports. */
export class SentinelSet {
  readonly masterName = MASTER_NAME;

  constructor(
    readonly servers: readonly RedisProcess[],
    readonly sentinels: readonly RedisProcess[],
    /** The proxies of a `proxied` set; undefined otherwise. */
    readonly links?: SentinelLinks,
  ) {}

  /** The server behind the address a Sentinel gives: the first master's proxy stands for it. */
  serverAt(port: number): RedisProcess | undefined {
    const first = this.servers[0];
    if (this.links && port === this.links.sentinels.port) return first;
    return this.servers.find((s) => s.port === port);
  }

  /** For an ioredis client: `new Redis({ sentinels, name })`. */
  get sentinelAddresses(): { host: string; port: number }[] {
    return this.sentinels.map((s) => ({ host: s.host, port: s.port }));
  }

  /** The server the Sentinels currently name as master. */
  async master(): Promise<RedisProcess> {
    for (const sentinel of this.sentinels.filter((s) => s.running && !s.paused)) {
      const reply = await rawCommand(sentinel.port, ['SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.masterName]).catch(
        () => undefined,
      );
      const server = this.serverAt(Number(reply?.split('\n')[1]));
      if (server) return server;
    }
    throw new Error('no sentinel names a master');
  }

  /** Waits until the Sentinels name a master other than `previous`, and it has taken the role. */
  async waitForFailover(previous: RedisProcess, timeoutMs = 20_000): Promise<RedisProcess> {
    let promoted: RedisProcess | undefined;
    await until(
      async () => {
        const current = await this.master();
        if (current === previous) return false;
        promoted = current;
        return (await info(current.port, 'replication')).get('role') === 'master';
      },
      'the Sentinels to promote a replica',
      timeoutMs,
    );
    return promoted as RedisProcess;
  }

  /** Every sentinel sees the master and the others; every running replica is in sync. */
  async healthy(): Promise<boolean> {
    const master = await this.master();
    const expectedSentinels = this.sentinels.length - 1;
    for (const sentinel of this.sentinels.filter((s) => s.running)) {
      const fields = (await rawCommand(sentinel.port, ['SENTINEL', 'MASTER', this.masterName])).split('\n');
      const value = (name: string) => fields[fields.indexOf(name) + 1];
      if (Number(value('num-other-sentinels')) < expectedSentinels) return false;
      if (this.serverAt(Number(value('port'))) !== master) return false;
    }
    for (const server of this.servers.filter((s) => s !== master && s.running && !s.paused)) {
      const replication = await info(server.port, 'replication');
      if (replication.get('master_link_status') !== 'up') return false;
    }
    return true;
  }

  waitUntilHealthy(timeoutMs = 20_000): Promise<void> {
    return until(() => this.healthy(), 'the Sentinel set to be healthy', timeoutMs);
  }

  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, ...this.servers].map((s) => s.stop()));
    await Promise.all([...(this.links?.replication ?? []), this.links?.sentinels].map((l) => l?.close()));
  }
}

/**
 * Starts 1 master, 2 replicas and 3 Sentinels (by default) from `redis-server` binaries, with
 * `SENTINEL_REPLICATION`'s settings, and waits until every Sentinel knows the others and the
 * replicas synced (without the default 5 s sync delay: a replica that never synced is never
 * promoted).
 */
export async function startSentinelSet(options: StartSentinelSetOptions = {}): Promise<SentinelSet> {
  const config = {
    'repl-diskless-sync-delay': '0',
    'min-replicas-to-write': String(SENTINEL_REPLICATION.minReplicasToWrite),
    'min-replicas-max-lag': String(SENTINEL_REPLICATION.minReplicasMaxLagS),
  };
  const [master] = await startAll([{ config }]);
  if (!master) throw new Error('the master did not start');
  const started: RedisProcess[] = [master];
  const proxies: ChaosProxy[] = [];
  const proxy = async () => {
    const link = await startChaosProxy({ target: { host: master.host, port: master.port } });
    proxies.push(link);
    return link;
  };
  try {
    const replicaCount = options.replicas ?? 2;
    const replication = options.proxied ? await Promise.all(Array.from({ length: replicaCount }, proxy)) : [];
    const sentinelLink = options.proxied ? await proxy() : undefined;
    const masterAt = (link: ChaosProxy | undefined) =>
      link ? [link.host, String(link.port)] : [master.host, String(master.port)];
    started.push(
      ...(await startAll(
        Array.from({ length: replicaCount }, (_, i) => ({
          config: { ...config, replicaof: masterAt(replication[i]) },
        })),
      )),
    );
    const count = options.sentinels ?? 3;
    const quorum = Math.floor(count / 2) + 1;
    const name = MASTER_NAME;
    const [host, port] = masterAt(sentinelLink);
    const sentinels = await startAll(
      Array.from({ length: count }, () => ({
        sentinel: [
          `sentinel monitor ${name} ${host} ${port} ${quorum}`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? SENTINEL_REPLICATION.downAfterMs}`,
          `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 3000}`,
          `sentinel parallel-syncs ${name} 1`,
        ],
      })),
    );
    const set = new SentinelSet([...started], sentinels, sentinelLink && { replication, sentinels: sentinelLink });
    started.push(...sentinels);
    await set.waitUntilHealthy();
    return set;
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    await Promise.all(proxies.map((p) => p.close()));
    throw error;
  }
}
