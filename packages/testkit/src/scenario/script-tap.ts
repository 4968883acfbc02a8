import { Cluster, type ClusterOptions, type Command, Redis, type RedisOptions } from 'ioredis';
import { parseNodes } from './topology.js';

export interface ScriptExchange {
  /** `process.hrtime.bigint()` just before the request was written: a bound below when Redis ran it. */
  sentAt: bigint;
  /** When the reply arrived, before the caller saw it: a bound above when Redis ran it. */
  repliedAt: bigint;
  reply: unknown;
}

export interface ScriptTap {
  /** Every script request (FCALL, EVALSHA or EVAL), when it is about to be sent. */
  onSend?(sentAt: bigint): void;
  /** Every script reply that arrived in time, with its request's send time. */
  onReply?(exchange: ScriptExchange): void;
  /**
   * A script request handed to the client again: an offline queue flushed after a reconnect,
   * or an unfinished request resent. The connection that carries leases must never do either (S5).
   */
  onResend?(firstSentAt: bigint): void;
}

const SCRIPT_COMMANDS = new Set(['fcall', 'evalsha', 'eval']);

/** Wraps a client's `sendCommand` so that script requests and their replies reach the tap. */
function tapSend<C extends Redis | Cluster>(client: C, tap: ScriptTap): void {
  const send = client.sendCommand.bind(client) as (command: Command, ...rest: unknown[]) => unknown;
  // A client sends a command through here again when it flushes its offline queue or resends
  // what was unfinished at a reconnect: the tap reports that, and times the first attempt.
  const firstSent = new WeakMap<Command, bigint>();
  (client as { sendCommand: (command: Command, ...rest: unknown[]) => unknown }).sendCommand = (command, ...rest) => {
    if (!SCRIPT_COMMANDS.has(command.name)) return send(command, ...rest);
    const first = firstSent.get(command);
    if (first !== undefined) {
      tap.onResend?.(first);
      return send(command, ...rest);
    }
    // A Cluster client follows MOVED / ASK below this call: the tap sees one request, sent at
    // its first attempt (still a bound below when Redis ran it), and its final reply.
    const sentAt = process.hrtime.bigint();
    firstSent.set(command, sentAt);
    tap.onSend?.(sentAt);
    const result = send(command, ...rest);
    command.promise.then(
      (reply: unknown) => tap.onReply?.({ sentAt, repliedAt: process.hrtime.bigint(), reply }),
      () => undefined,
    );
    return result;
  };
}

/**
 * A client to hand to `joinGroup({ redis })` that lets a test see what the member's scripts
 * were told, and when they were sent. The library never uses the client itself: it
 * duplicates it for its connections, and the duplicates carry the tap. Listeners run before
 * the library sees a reply (they are attached first), so a history can note what a reply
 * said before the member acts on it. `source` is a URL, or options such as
 * `{ sentinels, name }` for a Sentinel-managed master.
 */
export function tappedRedis(source: string | RedisOptions, tap: ScriptTap): Redis {
  const tapConnection = (connection: Redis): Redis => {
    tapSend(connection, tap);
    const duplicate = (override?: Partial<RedisOptions>) =>
      tapConnection(new Redis({ ...connection.options, ...override }));
    connection.duplicate = duplicate as Redis['duplicate'];
    return connection;
  };
  const client =
    typeof source === 'string' ? new Redis(source, { lazyConnect: true }) : new Redis({ ...source, lazyConnect: true });
  return tapConnection(client);
}

/** `tappedRedis` for a Redis Cluster: `nodes` are the startup nodes, `host:port,host:port`. */
export function tappedCluster(nodes: string, tap: ScriptTap, options: ClusterOptions = {}): Cluster {
  const tapCluster = (cluster: Cluster): Cluster => {
    tapSend(cluster, tap);
    const duplicate = (overrideNodes?: Parameters<Cluster['duplicate']>[0], overrideOptions?: ClusterOptions) =>
      tapCluster(Cluster.prototype.duplicate.call(cluster, overrideNodes, overrideOptions) as Cluster);
    cluster.duplicate = duplicate as Cluster['duplicate'];
    return cluster;
  };
  return tapCluster(new Cluster(parseNodes(nodes), { ...options, lazyConnect: true }));
}
