import { type Command, Redis, type RedisOptions } from 'ioredis';

export interface ScriptExchange {
  /** `process.hrtime.bigint()` just before the request was written: a bound below when Redis ran it. */
  sentAt: bigint;
  reply: unknown;
}

export interface ScriptTap {
  /** Every script request (EVALSHA or EVAL), when it is about to be sent. */
  onSend?(sentAt: bigint): void;
  /** Every script reply that arrived in time, with its request's send time. */
  onReply?(exchange: ScriptExchange): void;
}

const SCRIPT_COMMANDS = new Set(['evalsha', 'eval']);

/**
 * A client to hand to `joinGroup({ redis })` that lets a test see what the member's scripts
 * were told, and when they were sent. The library never uses the client itself: it
 * duplicates it for its connections, and the duplicates carry the tap. Listeners run before
 * the library sees a reply (they are attached first), so a history can note what a reply
 * said before the member acts on it.
 */
export function tappedRedis(url: string, tap: ScriptTap): Redis {
  const tapConnection = (connection: Redis): Redis => {
    const send = connection.sendCommand.bind(connection);
    connection.sendCommand = (command: Command, stream) => {
      if (!SCRIPT_COMMANDS.has(command.name)) return send(command, stream);
      const sentAt = process.hrtime.bigint();
      tap.onSend?.(sentAt);
      const result = send(command, stream);
      command.promise.then(
        (reply: unknown) => tap.onReply?.({ sentAt, reply }),
        () => undefined,
      );
      return result;
    };
    const duplicate = (override?: Partial<RedisOptions>) =>
      tapConnection(new Redis({ ...connection.options, ...override }));
    connection.duplicate = duplicate as Redis['duplicate'];
    return connection;
  };
  return tapConnection(new Redis(url, { lazyConnect: true }));
}
