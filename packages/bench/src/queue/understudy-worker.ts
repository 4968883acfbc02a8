import { joinQueue } from '@understudy/core';
import type { TaskData } from './types.js';
import type { JoinWorker } from './worker.js';

/** An understudy queue worker of capacity 1; the queue's verdict on each delivery is its `task` event. */
export const joinUnderstudy: JoinWorker = async (plan, redisUrl, run, settle, emit) => {
  const worker = await joinQueue({
    redis: redisUrl,
    queue: plan.queue,
    workerId: plan.workerId,
    capacity: 1,
    ...plan.system.understudy,
    handler: (task, { signal }) => run(task.id, task.data as TaskData, signal),
  });
  worker.on('task', (settled) => settle(settled.id, settled.outcome));
  worker.on('error', (error) => emit('error', { worker: plan.workerId, message: error.message }));
  return { leave: () => worker.leave() };
};
