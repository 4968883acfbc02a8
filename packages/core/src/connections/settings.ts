import { Cluster, type ClusterOptions, type Command, Redis, type RedisOptions } from 'ioredis';
import { isNotTheMaster } from '../failures.js';

/** What callers hand us: a client (we duplicate it), a URL, or connection options. */
export type RedisSource = Redis | Cluster | string | RedisOptions;

export type Connection = Redis | Cluster;

/**
 * Settings of the connection that carries leases (S5): a command is sent now or never.
 * No offline queue (nothing waits for a reconnect), no resend after a reconnect (a stale
 * renewal would extend a lease its member already gave up), no retries, and a command
 * timeout below the heartbeat interval, because a paused Redis keeps its socket open.
 * A socket given up (a handshake that timed out on a frozen server) is dropped after the
 * command timeout, not ioredis' default 2 s of waiting for the peer to close it: the next
 * attempt may find the replica promoted meanwhile.
 */
function leaseOptions(commandTimeout: number): RedisOptions {
  return {
    ...nowOrNeverOptions(commandTimeout, 'understudy-lease'),
    // Reconnect without resending (S5): a Sentinel client asks the Sentinels for the master
    // again, instead of renewing on a stale one until Sentinel converts it (8 s and more).
    reconnectOnError: (error) => (isNotTheMaster(error) ? 1 : false),
  };
}

/**
 * A connection whose commands are sent now or never: no offline queue, no resend after a
 * reconnect, no retries, a command timeout (a paused server keeps its socket open), and a
 * socket given up dropped after that timeout. The lease connection, and the feed reader's.
 */
export function nowOrNeverOptions(commandTimeout: number, connectionName: string): RedisOptions {
  return {
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    connectTimeout: Math.max(commandTimeout, 1000),
    disconnectTimeout: commandTimeout,
    retryStrategy: (attempt) => Math.min(attempt * 50, 500),
    connectionName,
    lazyConnect: true,
  };
}

/**
 * The Cluster-wide part of the lease settings (finding F12-cluster-resend). ioredis 6's Cluster
 * retries a command from its own timers on CLUSTERDOWN, TRYAGAIN, MOVED and a closed connection,
 * up to 16 times and 100 ms apart by default, and sends it even after the command timeout has
 * rejected the call: a renewal rejected at 81 ms ran on Redis 1.7 s later. So no delayed retry
 * and no resend after a closed connection (the command may have run); a redirection (the node
 * refused the command, it did not run) is followed at once, a few times at most. And whatever
 * path ioredis takes, a command whose caller has seen it settle is never written again
 * (`sendNowOrNever`): a MOVED reply that arrives after the timeout also retries it.
 */
const LEASE_CLUSTER_OPTIONS: ClusterOptions = {
  retryDelayOnClusterDown: 0,
  retryDelayOnFailover: 0,
  retryDelayOnTryAgain: 0,
  retryDelayOnMoved: 0,
  maxRedirections: 3,
};

/** A lease connection (S5): `leaseOptions`, and for a Cluster its own retry settings and the resend guard. */
export function openLease(source: RedisSource, commandTimeout: number): Connection {
  const connection = open(source, leaseOptions(commandTimeout), LEASE_CLUSTER_OPTIONS);
  if (connection instanceof Cluster) sendNowOrNever(connection);
  return connection;
}

/**
 * Every node connection of `cluster` refuses to write a command that has settled: its caller
 * saw the reply or the rejection, and a copy sent now would run after the caller gave up.
 */
function sendNowOrNever(cluster: Cluster): void {
  cluster.on('+node', (node: Redis) => {
    const send = node.sendCommand.bind(node);
    node.sendCommand = (command: Command, stream?: Parameters<Redis['sendCommand']>[1]) =>
      command.isSettled ? command.promise : send(command, stream);
  });
}

/**
 * Settings of the subscriber connection. No command timeout: ioredis re-subscribes on its own
 * after a reconnect and nothing awaits that promise, so a timeout there would be an unhandled
 * rejection that ends the process. On a single Redis, `openSubscriber` turns that off and `Subscriber`
 * re-subscribes with its errors handled; a Cluster's shard subscribers keep re-subscribing
 * themselves. The first SSUBSCRIBE is bounded by `Subscriber.subscribe`.
 */
const SUBSCRIBER_OPTIONS: RedisOptions = {
  connectionName: 'understudy-events',
  retryStrategy: (attempt) => Math.min(attempt * 50, 500),
  maxRetriesPerRequest: null,
  lazyConnect: true,
};

/** A subscriber connection (see `SUBSCRIBER_OPTIONS`). */
export function openSubscriber(source: RedisSource): Connection {
  return open(
    source,
    source instanceof Cluster ? SUBSCRIBER_OPTIONS : { ...SUBSCRIBER_OPTIONS, autoResubscribe: false },
  );
}

/** A short-lived connection for one admin call or read: one try, no reconnect, nothing queued. */
export function openOneOff(source: RedisSource, timeoutMs: number): Connection {
  return open(source, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    connectionName: 'understudy-admin',
  });
}

/** A connection of its own from `source` (a client is duplicated, never used), not connected yet. */
export function open(source: RedisSource, options: RedisOptions, clusterOptions: ClusterOptions = {}): Connection {
  if (source instanceof Cluster) {
    return source.duplicate(undefined, {
      ...clusterOptions,
      enableOfflineQueue: options.enableOfflineQueue ?? true,
      lazyConnect: true,
      shardedSubscribers: true,
      redisOptions: { ...source.options.redisOptions, ...options },
    });
  }
  if (source instanceof Redis) return source.duplicate(options);
  if (typeof source === 'string') return new Redis(source, options);
  return new Redis({ ...source, ...options });
}
