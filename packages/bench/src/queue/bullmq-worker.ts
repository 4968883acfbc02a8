import { type ConnectionOptions, Worker } from 'bullmq';
import type { JoinWorker, TaskData } from './types.js';

/** BullMQ's connection options for a redis:// URL: auto-pipelining off, as understudy's clients. */
export function bullmqConnection(redisUrl: string): ConnectionOptions {
  const url = new URL(redisUrl);
  return {
    host: url.hostname,
    port: Number(url.port),
    enableAutoPipelining: false,
    // BullMQ requires it for a Worker's blocking connection.
    maxRetriesPerRequest: null,
  };
}

/** A BullMQ Worker of concurrency 1; the queue's verdict is its `completed` / `failed` / `error` event. */
export const joinBullmq: JoinWorker = async (plan, redisUrl, run, settle, emit) => {
  const worker = new Worker<TaskData>(
    plan.queue,
    async (job, _token, signal) => {
      await run(job.id ?? '', job.data, signal);
    },
    { connection: bullmqConnection(redisUrl), concurrency: 1, name: plan.workerId, ...plan.system.bullmq },
  );
  worker.on('completed', (job) => settle(job.id ?? '', 'completed'));
  worker.on('failed', (job, error) => settle(job?.id ?? '', `failed: ${error.message}`));
  worker.on('error', (error) => emit('error', { worker: plan.workerId, message: error.message }));
  await worker.waitUntilReady();
  return { leave: () => worker.close() };
};
