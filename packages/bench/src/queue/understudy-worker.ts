import { joinQueue } from '@understudy/core';
import type { JoinWorker, TaskData } from './types.js';

/** The producer's stamp, from a task's data as the queue hands it back (a JSON value). */
function stamped(data: unknown): TaskData {
  const t = typeof data === 'object' && data !== null ? (data as { t?: unknown }).t : undefined;
  if (typeof t !== 'number') throw new Error(`task data without the producer's stamp: ${JSON.stringify(data)}`);
  return { t };
}

/** An understudy queue worker of capacity 1; the queue's verdict on each delivery is its `task` event. */
export const joinUnderstudy: JoinWorker = async (plan, redisUrl, run, settle, emit) => {
  const worker = await joinQueue({
    redis: redisUrl,
    queue: plan.queue,
    workerId: plan.workerId,
    capacity: 1,
    ...plan.system.understudy,
    handler: (task, { signal }) => run(task.id, stamped(task.data), signal),
  });
  worker.on('task', (settled) => settle(settled.id, settled.outcome));
  worker.on('error', (error) => emit('error', { worker: plan.workerId, message: error.message }));
  return { leave: () => worker.leave() };
};
