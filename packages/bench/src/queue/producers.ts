import { enqueue } from '@understudy/core';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { bullmqConnection } from './bullmq-worker.js';
import type { QueueSystem, TaskData } from './types.js';

/** The benchmark's side of a queue: adds tasks one call at a time, as an application would. */
export interface Producer {
  enqueue(data: TaskData): Promise<string>;
  close(): Promise<void>;
}

export async function openProducer(system: QueueSystem, redisUrl: string, queue: string): Promise<Producer> {
  if (system.kind === 'understudy') {
    const redis = new Redis(redisUrl, { enableAutoPipelining: false, connectionName: 'bench-producer' });
    await redis.ping();
    return {
      enqueue: (data) => enqueue({ redis, queue }, data),
      close: async () => {
        redis.disconnect();
      },
    };
  }
  const bull = new Queue<TaskData>(queue, { connection: bullmqConnection(redisUrl) });
  await bull.waitUntilReady();
  return {
    enqueue: async (data) => (await bull.add('task', data)).id ?? '',
    close: () => bull.close(),
  };
}
