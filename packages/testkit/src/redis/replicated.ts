import { type ChaosProxy, startChaosProxy } from '../chaos/proxy.js';
import type { RedisProcess } from './process.js';
import { info, startAll, until } from './topology.js';
import type { StartRedisOptions } from './types.js';

/**
 * A master and one replica whose replication link runs through a chaos proxy, with no
 * Sentinel: the operator's failover (`REPLICAOF NO ONE`, then a floating address moved to the
 * replica). Blackholing the link leaves the replica behind by whatever the master wrote
 * meanwhile — asynchronous replication's lost writes, with real servers.
 */
export class ReplicatedPair {
  #primary: RedisProcess;

  constructor(
    readonly master: RedisProcess,
    readonly replica: RedisProcess,
    /** The replica's connection to the master. */
    readonly replicationLink: ChaosProxy,
  ) {
    this.#primary = master;
  }

  get servers(): readonly RedisProcess[] {
    return [this.master, this.replica];
  }

  /** The server that takes writes now: the master, or the replica once promoted. */
  get primary(): RedisProcess {
    return this.#primary;
  }

  /** Bytes of the master's replication stream the replica has not applied (0 once promoted). */
  async lagBytes(): Promise<number> {
    if (this.#primary === this.replica) return 0;
    const [master, replica] = await Promise.all([
      info(this.master.port, 'replication'),
      info(this.replica.port, 'replication'),
    ]);
    return Number(master.get('master_repl_offset')) - Number(replica.get('slave_repl_offset'));
  }

  /** Cuts the replication link: bytes are lost, nobody sees it close (the replica falls behind). */
  cut(): void {
    this.replicationLink.blackhole(true);
  }

  /**
   * Mends the link: the connection that lost bytes is reset first (a stream with a gap would
   * not parse), so the replica reconnects and resumes from its offset.
   */
  mend(): void {
    this.replicationLink.reset();
    this.replicationLink.blackhole(false);
  }

  /** `REPLICAOF NO ONE` on the replica: it takes writes, with whatever it had applied. */
  async promote(): Promise<RedisProcess> {
    const reply = await this.replica.admin('REPLICAOF', 'NO', 'ONE');
    if (reply !== '+OK') throw new Error(`REPLICAOF NO ONE on port ${this.replica.port}: ${reply}`);
    this.replicationLink.reset();
    this.#primary = this.replica;
    return this.replica;
  }

  async stop(): Promise<void> {
    await Promise.all([this.master.stop(), this.replica.stop(), this.replicationLink.close()]);
  }
}

/** Starts a master and a replica that syncs with it through a chaos proxy; waits until it has. */
export async function startReplicatedPair(options: StartRedisOptions = {}): Promise<ReplicatedPair> {
  const config = { ...options.config, 'repl-diskless-sync-delay': '0' };
  const [master] = await startAll([{ ...options, config }]);
  if (!master) throw new Error('the master did not start');
  let link: ChaosProxy | undefined;
  try {
    link = await startChaosProxy({ target: { host: master.host, port: master.port } });
    const [replica] = await startAll([
      { ...options, config: { ...config, replicaof: [link.host, String(link.port)] } },
    ]);
    if (!replica) throw new Error('the replica did not start');
    const pair = new ReplicatedPair(master, replica, link);
    await until(
      async () => (await info(replica.port, 'replication')).get('master_link_status') === 'up',
      'the replica to sync',
      20_000,
    ).catch(async (error) => {
      await pair.stop();
      throw error;
    });
    return pair;
  } catch (error) {
    await Promise.all([master.stop(), link?.close()]);
    throw error;
  }
}
