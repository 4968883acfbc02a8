import { Cluster } from 'ioredis';
import { type Announcement, parseAnnouncement } from '../scripts.js';
import type { Connection } from './settings.js';

/**
 * A message as every listener of the process gets it: read as a group announcement at most
 * once, by the first listener that asks, however many members of the group the process runs.
 */
export class Heard {
  readonly #raw: string;
  #announcement: Announcement | undefined;
  #parsed = false;

  constructor(raw: string) {
    this.#raw = raw;
  }

  /** The group announcement it carries; undefined when it is not one (a forged or garbled message). */
  get announcement(): Announcement | undefined {
    if (!this.#parsed) {
      this.#parsed = true;
      this.#announcement = parseAnnouncement(this.#raw);
    }
    return this.#announcement;
  }
}

type MessageListener = (message: Heard) => void;
type ResyncListener = () => void;

/** A channel's listeners, and the SSUBSCRIBE the first of them sent (later ones wait for it too). */
interface Channel {
  listeners: Set<MessageListener>;
  subscribed: Promise<unknown>;
}

/**
 * One subscriber connection shared by every member and monitor of a process that uses the
 * same Redis: one subscription per channel however many listeners it has, each message handed
 * to every listener of its channel as one `Heard` (parsed once for all of them), and a resync
 * call after every reconnect (messages sent while it was down are lost; listeners catch up by
 * reading). Announcements are sharded pub/sub (SSUBSCRIBE): in a Cluster they stay on the
 * group's shard.
 */
export class Subscriber {
  readonly #connection: Connection;
  readonly #channels = new Map<string, Channel>();
  readonly #resync = new Set<ResyncListener>();
  #readyOnce = false;

  constructor(connection: Connection) {
    this.#connection = connection;
    connection.on('smessage', (channel: string, message: string) => {
      const listeners = this.#channels.get(channel)?.listeners;
      if (!listeners) return;
      const heard = new Heard(message);
      for (const listener of listeners) listener(heard);
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
    let entry = this.#channels.get(channel);
    if (!entry) {
      const subscribed = this.#connection.ssubscribe(channel);
      subscribed.catch(() => undefined); // still pending when the timer wins
      entry = { listeners: new Set(), subscribed };
      this.#channels.set(channel, entry);
    }
    entry.listeners.add(listener);
    this.#resync.add(resync);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`no reply to SSUBSCRIBE ${channel} within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([entry.subscribed, timedOut]);
    } finally {
      clearTimeout(timer);
    }
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
    const entry = this.#channels.get(channel);
    if (!entry) return;
    entry.listeners.delete(listener);
    if (entry.listeners.size === 0) {
      this.#channels.delete(channel);
      if (this.#connection.status === 'ready') void this.#connection.sunsubscribe(channel).catch(() => undefined);
    }
  }
}
