import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';
import type { RedisSource } from './connections/settings.js';
import { ConfigError } from './errors.js';
import { describe } from './failures.js';

/**
 * Redis's own slack in the min-replicas check: a replica's last acknowledgement is kept in
 * whole seconds, and the master recounts its good replicas once a second (replicationCron). A
 * master cut off from every replica therefore refuses writes at most max-lag + 2 s after the
 * last acknowledgement that reached it.
 */
export const MIN_REPLICAS_SLACK_MS = 2000;

/**
 * The split brain of asynchronous replication, under Sentinel: a master partitioned from the
 * Sentinels and its replicas, but not from an active member, keeps extending that member's
 * lease while the Sentinels promote a replica — and the promoted replica grants the slot once
 * its quarantine (A after the change of replication id, S6) is over. It is safe only if the old master
 * stops taking writes before the promotion can happen: `min-replicas-to-write` ≥ 1, and
 * Sentinel's `down-after-milliseconds` ≥ 1000 × (`min-replicas-max-lag` + 2). Then the old
 * master's last renewal precedes the promotion, its lease ends (on the member's clock) before
 * A has passed since, and the new master grants nothing before A has passed since.
 *
 * Checked when a member joins through Sentinel; a rule that does not hold is a ConfigError
 * saying what to set. A setting the member may not read (an ACL without CONFIG or without
 * access to the Sentinels) is logged as unchecked.
 */
export async function guardReplication(
  source: RedisSource,
  lease: Redis | Cluster,
  timeoutMs: number,
  log: Logger,
): Promise<void> {
  const sentinel = sentinelOptions(source);
  if (!sentinel) return;
  const name = sentinel.name ?? 'mymaster';
  const replication = String(await lease.call('INFO', 'replication'));
  // The field appears only while min-replicas-to-write is above 0.
  if (!/^min_slaves_good_slaves:/m.test(replication)) {
    throw new ConfigError(
      'min-replicas-to-write',
      0,
      `the master of Sentinel set "${name}" must refuse writes once it lost its replicas: set min-replicas-to-write 1 and min-replicas-max-lag L on every server of the set, with the Sentinels' down-after-milliseconds ≥ 1000 × (L + 2) (docs/OPERATIONS.md, "A partitioned old master")`,
    );
  }
  const maxLagS = await readConfig(lease, 'min-replicas-max-lag', log);
  const downAfterMs = await readDownAfter(sentinel, name, timeoutMs, log);
  if (maxLagS === undefined || downAfterMs === undefined) {
    log.warn(
      { maxLagS, downAfterMs },
      `could not verify that down-after-milliseconds ≥ 1000 × (min-replicas-max-lag + 2) for Sentinel set "${name}": make sure it holds (docs/OPERATIONS.md)`,
    );
    return;
  }
  if (downAfterMs < 1000 * maxLagS + MIN_REPLICAS_SLACK_MS) {
    throw new ConfigError(
      'min-replicas-max-lag',
      maxLagS,
      `with down-after-milliseconds ${downAfterMs} on the Sentinels of "${name}", a master cut off from its replicas may take writes after a replica was promoted: set min-replicas-max-lag ≤ ${Math.floor((downAfterMs - MIN_REPLICAS_SLACK_MS) / 1000)} (at least 1), or down-after-milliseconds ≥ ${1000 * maxLagS + MIN_REPLICAS_SLACK_MS} (docs/OPERATIONS.md, "A partitioned old master")`,
    );
  }
}

function sentinelOptions(source: RedisSource): RedisOptions | undefined {
  if (typeof source === 'string' || source instanceof Cluster) return undefined;
  const options = source instanceof Redis ? source.options : source;
  return options.sentinels && options.sentinels.length > 0 ? options : undefined;
}

/** `CONFIG GET name` as a number; undefined (and a log line) when the server refuses it. */
async function readConfig(lease: Redis | Cluster, name: string, log: Logger): Promise<number | undefined> {
  try {
    const [, value] = (await lease.call('CONFIG', 'GET', name)) as string[];
    return value === undefined ? undefined : Number(value);
  } catch (error) {
    log.warn({ error: describe(error) }, `CONFIG GET ${name} was refused`);
    return undefined;
  }
}

/** `down-after-milliseconds` from the first Sentinel that answers `SENTINEL MASTER name`. */
async function readDownAfter(
  options: RedisOptions,
  name: string,
  timeoutMs: number,
  log: Logger,
): Promise<number | undefined> {
  for (const address of options.sentinels ?? []) {
    const sentinel = new Redis({
      host: address.host,
      port: address.port,
      username: options.sentinelUsername,
      password: options.sentinelPassword,
      tls: options.sentinelTLS,
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
      commandTimeout: timeoutMs,
      connectTimeout: timeoutMs,
      connectionName: 'understudy-guard',
    });
    sentinel.on('error', () => undefined);
    try {
      await sentinel.connect();
      const fields = (await sentinel.call('SENTINEL', 'MASTER', name)) as string[];
      const value = fields[fields.indexOf('down-after-milliseconds') + 1];
      if (value !== undefined) return Number(value);
    } catch (error) {
      log.warn(
        { sentinel: `${address.host}:${address.port}`, error: describe(error) },
        `SENTINEL MASTER ${name} failed`,
      );
    } finally {
      sentinel.disconnect();
    }
  }
  return undefined;
}
