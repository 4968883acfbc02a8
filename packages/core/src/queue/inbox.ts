import { setTimeout as sleep } from 'node:timers/promises';
import type { Cluster, Redis } from 'ioredis';
import { ConfigError } from '../errors.js';
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

const NEWLINE = 0x0a;

export function parseDelivery(element: Buffer): Delivery {
  const end = element.indexOf(NEWLINE);
  const [id, token, deliveries, expires, type] = element.subarray(0, end).toString('latin1').split(' ');
  return {
    id: id ?? '',
    token: Number(token),
    deliveries: Number(deliveries),
    expires: Number(expires),
    data: decodeData(type ?? 's', element.subarray(end + 1)),
  };
}

/** How task data travels: a type letter and bytes (`s` UTF-8 text, `b` bytes, `j` JSON). */
export function encodeData(data: unknown): ['s' | 'b' | 'j', string | Buffer] {
  if (typeof data === 'string') return ['s', data];
  if (Buffer.isBuffer(data)) return ['b', data];
  if (data instanceof Uint8Array) return ['b', Buffer.from(data.buffer, data.byteOffset, data.byteLength)];
  let json: string | undefined;
  try {
    json = JSON.stringify(data);
  } catch (error) {
    throw new ConfigError('data', data, `must be a string, a Buffer or a JSON value: ${String(error)}`);
  }
  if (json === undefined) throw new ConfigError('data', data, 'must be a string, a Buffer or a JSON value');
  return ['j', json];
}

function decodeData(type: string, bytes: Buffer): TaskData {
  if (type === 'b') return Buffer.from(bytes);
  if (type === 'j') return JSON.parse(bytes.toString('utf8')) as unknown;
  return bytes.toString('utf8');
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
