import { Cluster, Redis } from 'ioredis';
import { RedisUnavailableError } from '../errors.js';
import { classify, describe } from '../failures.js';
import { describeSource, redisUser, tlsHint } from './diagnosis.js';
import { type Connection, openLease, openOneOff, openSubscriber, type RedisSource } from './settings.js';
import { Subscriber } from './subscriber.js';

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
/** Lease connections whose reset (a disconnect to reconnect) is under way. */
const resetting = new WeakSet<Connection>();

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
    const connection = openSubscriber(source);
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
  // Every member sharing the connection sees its own commands time out: the first reset serves
  // them all (status stays 'ready' until the socket closed, and each further disconnect() would
  // add one more 'close' listener to it: MaxListenersExceededWarning with thousands of members).
  const resetLease = () => {
    const connection = held.lease.connection;
    if (released || connection.status !== 'ready' || resetting.has(connection)) return;
    if (connection instanceof Cluster) {
      held.lease.connection = replaceCluster(connection, source, commandTimeout);
      return;
    }
    resetting.add(connection);
    connection.once('close', () => resetting.delete(connection));
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
 * that are not the library's own errors are classified (`classify`): a PermissionError for an
 * ACL refusal, else a RedisUnavailableError saying `what` failed.
 */
export async function withConnection<T>(
  source: RedisSource,
  timeoutMs: number,
  what: string,
  work: (connection: Connection) => Promise<T>,
  group?: string,
): Promise<T> {
  const connection = openOneOff(source, timeoutMs);
  connection.on('error', () => undefined);
  try {
    await connect(connection, source, timeoutMs);
    return await work(connection);
  } catch (error) {
    throw classify(error, { operation: what, user: redisUser(source), group });
  } finally {
    connection.disconnect();
  }
}

/**
 * Runs `work` on the client the caller handed over, as it is (its offline queue and retries
 * apply: hot paths such as publish and enqueue keep no connection of their own), or on a
 * short-lived connection opened from a URL or options (`withConnection`).
 */
export function runOnSource<T>(
  source: RedisSource,
  timeoutMs: number,
  what: string,
  work: (connection: Connection) => Promise<T>,
  group?: string,
): Promise<T> {
  if (source instanceof Redis || source instanceof Cluster) return work(source);
  return withConnection(source, timeoutMs, what, work, group);
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
      `cannot reach Redis at ${describeSource(source)}: ${describe(cause)}${tlsHint(cause, source)}`,
      { cause },
    );
  } finally {
    clearTimeout(timer);
    connection.off('error', onError);
    connection.off('ready', onReady);
    connection.off('end', onEnd);
  }
}
