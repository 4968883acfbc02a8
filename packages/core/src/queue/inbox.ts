import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis, RedisOptions } from 'ioredis';
import { connect } from '../connections/pool.js';
import { open, type RedisSource } from '../connections/settings.js';
import { decodeValue } from '../feed/encoding.js';
import type { TaskData } from './types.js';

/** One delivery as the dispatching script pushed it to a worker's inbox (lua/queue/lib.lua `dispatch`). */
export interface Delivery {
  id: string;
  token: number;
  deliveries: number;
  /** When the delivery expires, in Redis ms. */
  expires: number;
  data: TaskData;
}

const NEWLINE = '\n';

/**
 * The tokens of the deliveries a worker received lately: a delivery that came in a script's reply
 * may come again in a renewal's (sent before the first reply arrived); the second is ignored.
 * A token is kept for `keepMs` (the renewal that sends one again answers within A).
 */
export class RecentTokens {
  readonly #keepMs: number;
  readonly #seen = new Map<number, number>();

  constructor(keepMs: number) {
    this.#keepMs = keepMs;
  }

  /** Notes a token received at `now`; false when it was received already. */
  add(token: number, now: number): boolean {
    if (this.#seen.has(token)) return false;
    // Insertion order is arrival order: the oldest come first.
    for (const [old, at] of this.#seen) {
      if (now - at < this.#keepMs) break;
      this.#seen.delete(old);
    }
    this.#seen.set(token, now);
    return true;
  }
}

/**
 * A delivery from its inbox element: the header line, then the data as the task's stream entry
 * has it. As bytes from the inbox, or as text from a script's reply (text and JSON data only).
 */
export function parseDelivery(element: Buffer | string): Delivery {
  const end = element.indexOf(NEWLINE);
  const text = typeof element === 'string';
  const header = text ? element.slice(0, end) : element.subarray(0, end).toString('latin1');
  const [id, token, deliveries, expires, type = ''] = header.split(' ');
  const value = text ? element.slice(end + 1) : element.subarray(end + 1);
  return {
    id: id ?? '',
    token: Number(token),
    deliveries: Number(deliveries),
    expires: Number(expires),
    data: decodeValue(type, value) ?? value,
  };
}

/**
 * Settings of a worker's inbox connection, which only blocks (BLPOP): never the lease connection
 * (S5), and no command timeout, since a blocking read waits by design. A BLPOP cut by a reconnect
 * is sent again: the element it may have popped is reaped with its delivery.
 */
const INBOX_OPTIONS: RedisOptions = {
  connectionName: 'understudy-inbox',
  retryStrategy: (attempt) => Math.min(attempt * 50, 500),
  maxRetriesPerRequest: null,
  lazyConnect: true,
};

/** A connection of its own for the inbox's blocking reads, connected. */
export async function openInbox(source: RedisSource, connectTimeout: number): Promise<Redis | Cluster> {
  const connection = open(source, INBOX_OPTIONS);
  connection.on('error', () => undefined); // reconnects on its own; the worker sees renewal errors
  await connect(connection, source, connectTimeout);
  return connection;
}

/**
 * A worker's inbox reader: BLPOP on a connection of its own (blocking reads never share the
 * lease connection), one delivery at a time, as soon as the dispatching script pushed it.
 * The BLPOP times out now and then only to notice a connection that died silently.
 */
export class InboxReader {
  #closed = false;
  readonly #connection: Redis | Cluster;
  readonly #key: string;
  readonly #timeoutSeconds: number;
  readonly #onDelivery: (delivery: Delivery) => void;
  readonly #onError: (error: unknown) => void;

  constructor(
    connection: Redis | Cluster,
    key: string,
    timeoutSeconds: number,
    onDelivery: (delivery: Delivery) => void,
    onError: (error: unknown) => void,
  ) {
    this.#connection = connection;
    this.#key = key;
    this.#timeoutSeconds = timeoutSeconds;
    this.#onDelivery = onDelivery;
    this.#onError = onError;
    void this.#loop();
  }

  async #loop(): Promise<void> {
    while (!this.#closed) {
      try {
        const popped = await this.#connection.blpopBuffer(this.#key, this.#timeoutSeconds);
        if (popped && !this.#closed) this.#onDelivery(parseDelivery(popped[1]));
      } catch (error) {
        if (this.#closed) return;
        this.#onError(error);
        await sleep(100);
      }
    }
  }

  /**
   * Stops reading; what is still in the inbox is handed back by the leave script. Does not wait
   * for the BLPOP in flight: one queued while the connection is down never settles.
   */
  close(): void {
    this.#closed = true;
    this.#connection.disconnect();
  }
}
