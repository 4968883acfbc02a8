import { Redis } from 'ioredis';
import type { RedisServer } from '../redis/types.js';

/**
 * Listens to a group's announcement channel (`…:events`) on one server and keeps every message,
 * so that a scenario can replay old ones later: a stale publisher, a delayed copy.
 */
export class AnnouncementRecorder {
  readonly messages: string[] = [];
  readonly #client: Redis;

  private constructor(client: Redis) {
    this.#client = client;
  }

  static async start(server: RedisServer, channel: string): Promise<AnnouncementRecorder> {
    const client = new Redis({ host: server.host, port: server.port, lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    const recorder = new AnnouncementRecorder(client);
    client.on('smessage', (_channel: string, message: string) => recorder.messages.push(message));
    await client.connect();
    await client.ssubscribe(channel);
    return recorder;
  }

  close(): void {
    this.#client.disconnect();
  }
}
