import { Cluster } from 'ioredis';
import type { Connection } from './settings.js';

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
