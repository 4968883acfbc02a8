import { Cluster, type ClusterOptions, type Command, Redis, type RedisOptions } from 'ioredis';
import { PermissionError, permissionDenied, RedisUnavailableError, UnderstudyError } from './errors.js';

/** What callers hand us: a client (we duplicate it), a URL, or connection options. */
export type RedisSource = Redis | Cluster | string | RedisOptions;

type Connection = Redis | Cluster;

/**
 * Replies that say the server is no longer a master that may take the group's writes: one
 * demoted to a replica (READONLY), one cut off from its replicas under `min-replicas-to-write`
 * (NOREPLICAS), a replica that lost its master (MASTERDOWN).
 */
const NOT_THE_MASTER = /^(READONLY|NOREPLICAS|MASTERDOWN)\b/;

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
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 0,
    commandTimeout,
    connectTimeout: Math.max(commandTimeout, 1000),
    disconnectTimeout: commandTimeout,
    retryStrategy: (attempt) => Math.min(attempt * 50, 500),
    // Reconnect without resending (S5): a Sentinel client asks the Sentinels for the master
    // again, instead of renewing on a stale one until Sentinel converts it (8 s and more).
    reconnectOnError: (error) => (NOT_THE_MASTER.test(error.message) ? 1 : false),
    connectionName: 'understudy-lease',
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
function openLease(source: RedisSource, commandTimeout: number): Connection {
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
 * rejection that ends the process. On a single Redis, `acquireLink` turns that off and
 * `Subscriber` re-subscribes with its errors handled; a Cluster's shard subscribers keep
 * re-subscribing themselves. The first SSUBSCRIBE is bounded by `Subscriber.subscribe`.
 */
const SUBSCRIBER_OPTIONS: RedisOptions = {
  connectionName: 'understudy-events',
  retryStrategy: (attempt) => Math.min(attempt * 50, 500),
  maxRetriesPerRequest: null,
  lazyConnect: true,
};

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

function describeSource(source: RedisSource): string {
  if (typeof source === 'string') return source.replace(/\/\/[^@/]*@/, '//***@');
  if (source instanceof Cluster) return 'the Redis Cluster';
  const o = source instanceof Redis ? source.options : source;
  return `${o.host ?? 'localhost'}:${o.port ?? 6379}`;
}

/** Node's codes for a server certificate that no trusted CA signed. */
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
]);

function tlsOptionsOf(source: RedisSource): RedisOptions['tls'] | undefined {
  if (typeof source === 'string') return /^rediss:/i.test(source) ? {} : undefined;
  if (source instanceof Cluster) return source.options.redisOptions?.tls;
  return (source instanceof Redis ? source.options : source).tls;
}

/** What to do about a TLS failure, for the error message; empty for other failures. */
function tlsHint(cause: unknown, source: RedisSource): string {
  const tls = tlsOptionsOf(source);
  if (!tls) return '';
  const code = (cause as { code?: unknown } | undefined)?.code;
  const message = cause instanceof Error ? cause.message : '';
  if (typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code)) {
    return (
      " (TLS: the server's certificate is not signed by a CA this client trusts; give the CA's " +
      'certificate as tls.ca, or --tls-ca on the command line)'
    );
  }
  // The server refuses a client certificate either by closing the socket or, when the alert
  // reaches the client first, with an alert: which one the client sees is a matter of timing.
  const refusedDuringHandshake =
    code === 'ECONNRESET' ||
    code === 'EPIPE' ||
    /certificate required|alert (unknown ca|bad certificate|certificate unknown)/i.test(message);
  if (!refusedDuringHandshake) return '';
  const closed =
    ' (TLS: the server closed the connection during the handshake; if it requires client certificates (tls-auth-clients), ';
  return typeof tls === 'object' && tls.cert
    ? `${closed}it did not accept this one: is it signed by a CA the server trusts (tls-ca-cert-file)?)`
    : `${closed}give one: tls.cert and tls.key, or --tls-cert and --tls-key)`;
}

/** The Redis user a source (or a connection opened from it) logs in as. */
export function redisUser(source: RedisSource): string {
  if (typeof source === 'string') {
    try {
      return decodeURIComponent(new URL(source).username) || 'default';
    } catch {
      return 'default';
    }
  }
  if (source instanceof Cluster) return source.options.redisOptions?.username || 'default';
  const options = source instanceof Redis ? source.options : source;
  return options.username || 'default';
}

/** A PermissionError for an ACL refusal met while doing `operation`, else undefined. */
export function permissionError(
  error: unknown,
  source: RedisSource,
  operation: string,
  group?: string,
): PermissionError | undefined {
  const reply = permissionDenied(error);
  return reply === undefined
    ? undefined
    : new PermissionError(redisUser(source), operation, reply, group, { cause: error });
}

/**
 * Connects and waits for 'ready'. A close during the handshake is not final while the
 * connection retries on its own (a busy process can miss a handshake reply's timeout):
 * only the deadline, or a connection that gave up ('end'), fails.
 */
export async function connect(connection: Connection, source: RedisSource, timeoutMs: number): Promise<void> {
  let lastError: unknown;
  const onError = (error: unknown) => {
    lastError = error;
  };
  let settle: (error?: Error) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    settle = (error) => (error ? reject(error) : resolve());
  });
  const onReady = () => settle();
  const onEnd = () => settle(new Error('the connection was closed'));
  const timer = setTimeout(() => settle(new Error(`no connection within ${timeoutMs} ms`)), timeoutMs);
  connection.on('error', onError);
  connection.once('ready', onReady);
  connection.once('end', onEnd);
  // connect() itself only rejects with "Connection is closed."; the 'error' event says why.
  let connectError: unknown;
  try {
    connection.connect().catch((error: unknown) => {
      connectError = error;
    });
    await ready;
  } catch (error) {
    connection.disconnect();
    const cause = lastError ?? connectError ?? error;
    throw new RedisUnavailableError(
      `cannot reach Redis at ${describeSource(source)}: ${cause instanceof Error ? cause.message : String(cause)}${tlsHint(cause, source)}`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
    connection.off('error', onError);
    connection.off('ready', onReady);
    connection.off('end', onEnd);
  }
}

type MessageListener = (message: string) => void;
type ResyncListener = () => void;

/**
 * One subscriber connection shared by every member and monitor of a process that uses the
 * same Redis: channel listeners, and a resync call after every reconnect (messages sent
 * while it was down are lost; listeners catch up by reading). Announcements are sharded
 * pub/sub (SSUBSCRIBE): in a Cluster they stay on the group's shard.
 */
export class Subscriber {
  readonly #connection: Connection;
  readonly #channels = new Map<string, Set<MessageListener>>();
  readonly #resync = new Set<ResyncListener>();
  #readyOnce = false;

  constructor(connection: Connection) {
    this.#connection = connection;
    connection.on('smessage', (channel: string, message: string) => {
      for (const listener of this.#channels.get(channel) ?? []) listener(message);
    });
    connection.on('ready', () => {
      if (this.#readyOnce) {
        this.#resubscribe();
        for (const listener of this.#resync) listener();
      }
      this.#readyOnce = true;
    });
    connection.on('error', () => undefined); // reconnects on its own; members see renewal errors
  }

  get connection(): Connection {
    return this.#connection;
  }

  /**
   * Delivers a channel's messages to `listener` and calls `resync` after every reconnect.
   * Fails if Redis has not confirmed the subscription within `timeoutMs` (a paused Redis
   * keeps the socket open and would never answer).
   */
  async subscribe(
    channel: string,
    listener: MessageListener,
    resync: ResyncListener,
    timeoutMs: number,
  ): Promise<void> {
    let listeners = this.#channels.get(channel);
    if (!listeners) {
      listeners = new Set();
      this.#channels.set(channel, listeners);
      const subscribed = this.#connection.ssubscribe(channel);
      subscribed.catch(() => undefined); // still pending when the timer wins
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no reply to SSUBSCRIBE ${channel} within ${timeoutMs} ms`)),
          timeoutMs,
        );
      });
      try {
        await Promise.race([subscribed, timedOut]);
      } finally {
        clearTimeout(timer);
      }
    }
    listeners.add(listener);
    this.#resync.add(resync);
  }

  /** A single Redis forgets subscriptions with the connection; a Cluster's shard subscribers restore their own. */
  #resubscribe(): void {
    if (this.#connection instanceof Cluster) return;
    for (const channel of this.#channels.keys()) {
      // A failure means the connection closed again; the next 'ready' tries again.
      this.#connection.ssubscribe(channel).catch(() => undefined);
    }
  }

  /**
   * Stops delivering a channel to a listener. Never waits for Redis: leaving and closing must
   * finish while Redis is down (the UNSUBSCRIBE would wait in the offline queue forever).
   */
  unsubscribe(channel: string, listener: MessageListener, resync: ResyncListener): void {
    this.#resync.delete(resync);
    const listeners = this.#channels.get(channel);
    if (!listeners) return;
    listeners.delete(listener);
    if (listeners.size === 0) {
      this.#channels.delete(channel);
      if (this.#connection.status === 'ready') void this.#connection.sunsubscribe(channel).catch(() => undefined);
    }
  }
}

interface Shared {
  readonly source: RedisSource;
  leases: Map<number, { connection: Connection; users: number; ready: Promise<void> }>;
  subscriber?: { subscriber: Subscriber; users: number; ready: Promise<void> };
}

/** A member's (or monitor's) hold on the shared connections; `release()` once, when done. */
export interface Link {
  readonly lease: Connection;
  readonly subscriber: Subscriber;
  /** Closes the connections if this was their last user (no quit: a paused Redis would never answer it). */
  release(): void;
  /**
   * Drops the lease connection and opens it again: after a command timed out, a reply that
   * never comes would otherwise pair every later reply with the wrong request, and requests
   * still queued in the socket would run late (S5).
   */
  resetLease(): void;
}

const byClient = new WeakMap<object, Shared>();
const byUrl = new Map<string, Shared>();

function sharedFor(source: RedisSource): Shared {
  const existing = typeof source === 'string' ? byUrl.get(source) : byClient.get(source);
  if (existing) return existing;
  const shared: Shared = { source, leases: new Map() };
  if (typeof source === 'string') byUrl.set(source, shared);
  else byClient.set(source, shared);
  return shared;
}

/**
 * Connections for one member: members of one process that use the same client (or URL)
 * and the same command timeout share one lease connection, and all share one subscriber.
 * They close when the last user releases them.
 */
export async function acquireLink(source: RedisSource, commandTimeout: number, connectTimeout: number): Promise<Link> {
  const shared = sharedFor(source);
  let lease = shared.leases.get(commandTimeout);
  if (!lease) {
    const connection = openLease(source, commandTimeout);
    connection.on('error', () => undefined); // each command reports its own failure
    lease = { connection, users: 0, ready: connect(connection, source, connectTimeout) };
    shared.leases.set(commandTimeout, lease);
  }
  let sub = shared.subscriber;
  if (!sub) {
    const connection = open(
      source,
      source instanceof Cluster ? SUBSCRIBER_OPTIONS : { ...SUBSCRIBER_OPTIONS, autoResubscribe: false },
    );
    sub = { subscriber: new Subscriber(connection), users: 0, ready: connect(connection, source, connectTimeout) };
    shared.subscriber = sub;
  }
  lease.users += 1;
  sub.users += 1;
  const held = { lease, sub };
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    held.lease.users -= 1;
    held.sub.users -= 1;
    if (held.lease.users === 0 && shared.leases.get(commandTimeout) === held.lease) {
      shared.leases.delete(commandTimeout);
      held.lease.connection.disconnect();
    }
    if (held.sub.users === 0 && shared.subscriber === held.sub) {
      shared.subscriber = undefined;
      held.sub.subscriber.connection.disconnect();
    }
    if (typeof source === 'string' && shared.leases.size === 0 && !shared.subscriber) byUrl.delete(source);
  };
  try {
    await Promise.all([lease.ready, sub.ready]);
  } catch (error) {
    // A failed connection is not kept for the next caller.
    if (shared.leases.get(commandTimeout) === lease) shared.leases.delete(commandTimeout);
    if (shared.subscriber === sub) shared.subscriber = undefined;
    released = true;
    lease.connection.disconnect();
    sub.subscriber.connection.disconnect();
    throw error;
  }
  const resetLease = () => {
    const connection = held.lease.connection;
    if (released || connection.status !== 'ready') return;
    if (connection instanceof Cluster) {
      held.lease.connection = replaceCluster(connection, source, commandTimeout);
      return;
    }
    connection.disconnect(true);
  };
  return {
    // Read at every use: a reset Cluster is replaced by a new client.
    get lease() {
      return held.lease.connection;
    },
    subscriber: sub.subscriber,
    release,
    resetLease,
  };
}

/**
 * A Cluster that disconnects in order to reconnect can stay 'disconnecting' for good (finding
 * F11): when a command still in flight is answered MOVED meanwhile, ioredis (6.0.0) adds the
 * node it was sent to into the pool it is emptying, the pool never drains, and every later
 * command fails with "Cluster isn't ready". So the lease Cluster is replaced instead: a new
 * client, which connects (and retries) on its own, and the old one closed — with any node a
 * late redirection added to it once its commands have timed out.
 */
function replaceCluster(old: Cluster, source: RedisSource, commandTimeout: number): Cluster {
  const fresh = openLease(source, commandTimeout) as Cluster;
  fresh.on('error', () => undefined);
  fresh.connect().catch(() => undefined); // a Cluster that cannot connect yet keeps retrying
  old.disconnect();
  const sweep = setTimeout(() => {
    for (const node of old.nodes('all')) node.disconnect();
  }, 2 * commandTimeout);
  sweep.unref();
  return fresh;
}

/**
 * Runs `work` on a short-lived connection of its own (admin calls, one-off reads). Failures
 * that are not the library's own errors become a PermissionError (ACL refusals) or a
 * RedisUnavailableError saying `what` failed.
 */
export async function withConnection<T>(
  source: RedisSource,
  timeoutMs: number,
  what: string,
  work: (connection: Connection) => Promise<T>,
  group?: string,
): Promise<T> {
  const connection = open(source, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    commandTimeout: timeoutMs,
    retryStrategy: () => null,
    connectionName: 'understudy-admin',
  });
  connection.on('error', () => undefined);
  try {
    await connect(connection, source, timeoutMs);
    return await work(connection);
  } catch (error) {
    if (error instanceof UnderstudyError) throw error;
    const refused = permissionError(error, source, what, group);
    if (refused) throw refused;
    throw new RedisUnavailableError(`${what}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  } finally {
    connection.disconnect();
  }
}
