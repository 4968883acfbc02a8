import type { RedisProcess } from './process.js';
import { rawCommand } from './resp.js';
import { info, startAll, until } from './topology.js';

export interface StartSentinelSetOptions {
  /** Replicas of the master (default 2). */
  replicas?: number;
  /** Sentinels (default 3; quorum is a majority). */
  sentinels?: number;
  /** `down-after-milliseconds`: how long a silent master lasts before failover starts (default 1000). */
  downAfterMs?: number;
  /** `failover-timeout` (default 3000). */
  failoverTimeoutMs?: number;
}

const MASTER_NAME = 'understudy';

/** A master with replicas watched by Sentinels, all `redis-server` processes on free ports. */
export class SentinelSet {
  readonly masterName = MASTER_NAME;

  constructor(
    readonly servers: readonly RedisProcess[],
    readonly sentinels: readonly RedisProcess[],
  ) {}

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
      const port = Number(reply?.split('\n')[1]);
      const server = this.servers.find((s) => s.port === port);
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
      if (Number(value('port')) !== master.port) return false;
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
  }
}

/**
 * Starts 1 master, 2 replicas and 3 Sentinels (by default) from `redis-server` binaries, with a
 * short down-after, and waits until every Sentinel knows the others and the replicas synced
 * (without the default 5 s sync delay: a replica that never synced is never promoted).
 */
export async function startSentinelSet(options: StartSentinelSetOptions = {}): Promise<SentinelSet> {
  const fast = { 'repl-diskless-sync-delay': '0' };
  const [master] = await startAll([{ config: fast }]);
  if (!master) throw new Error('the master did not start');
  const started: RedisProcess[] = [master];
  try {
    started.push(
      ...(await startAll(
        Array.from({ length: options.replicas ?? 2 }, () => ({
          config: { ...fast, replicaof: [master.host, String(master.port)] },
        })),
      )),
    );
    const count = options.sentinels ?? 3;
    const quorum = Math.floor(count / 2) + 1;
    const name = MASTER_NAME;
    const sentinels = await startAll(
      Array.from({ length: count }, () => ({
        sentinel: [
          `sentinel monitor ${name} ${master.host} ${master.port} ${quorum}`,
          `sentinel down-after-milliseconds ${name} ${options.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} ${options.failoverTimeoutMs ?? 3000}`,
          `sentinel parallel-syncs ${name} 1`,
        ],
      })),
    );
    const set = new SentinelSet([...started], sentinels);
    started.push(...sentinels);
    await set.waitUntilHealthy();
    return set;
  } catch (error) {
    await Promise.all(started.map((s) => s.stop()));
    throw error;
  }
}
